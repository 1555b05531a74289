/* Growing an array by doubling: one helper for every append site. */
#ifndef PAYTX_GROW_H
#define PAYTX_GROW_H

#include <stddef.h>

/* Room for one more element in the array v of *cap elements of elem bytes
 * with n in use: v itself while n < *cap, else v reallocated to twice as
 * many (first at least) with *cap updated. NULL when out of memory (v and
 * *cap untouched). */
void *paytx_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first);

#endif
