/* The coordinator's in-memory table of in-flight transactions, by txn id.
 *
 * Open addressing with linear probing and backward-shift deletion; the
 * table owns its struct txn values (heap, one each) and grows by doubling,
 * so memory follows the number in flight, not history. Single-threaded.
 */
#ifndef PAYTX_TXTABLE_H
#define PAYTX_TXTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "txn.h"

struct txtable {
	struct txn **slots;
	size_t cap;     /* power of two */
	size_t len;
};

void txtable_init(struct txtable *t);
void txtable_finish(struct txtable *t);          /* frees every txn */
struct txn *txtable_get(struct txtable *t, int64_t id);
/* Takes over x (allocated with malloc). PAYTX_ENOMEM, or PAYTX_EINVAL if the id exists. */
int txtable_put(struct txtable *t, struct txn *x) PAYTX_MUST_CHECK;
/* Remove and free. */
void txtable_del(struct txtable *t, int64_t id);
/* Iterate: *pos starts at 0; returns NULL at the end. Do not modify the
 * table while iterating. */
struct txn *txtable_next(struct txtable *t, size_t *pos);

#endif
