/* Growable byte buffer that encoders append to */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "paytx/message.h"

#define BUF_CAP_MIN 256

void *paytx_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first)
{
	if (n < *cap)
		return v;
	size_t want = *cap ? *cap * 2 : first;
	if (want <= n || want > SIZE_MAX / elem)
		return NULL;
	void *x = realloc(v, want * elem);
	if (x)
		*cap = want;
	return x;
}

/* Make room for extra more bytes plus the terminating NUL. */
static int buf_reserve(struct paytx_buf *buf, size_t extra)
{
	size_t need, cap;
	char *data;

	if (extra > SIZE_MAX - 1 - buf->len)
		return PAYTX_ENOMEM;
	need = buf->len + extra + 1;
	if (need <= buf->cap)
		return 0;
	cap = buf->cap ? buf->cap : BUF_CAP_MIN;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	data = realloc(buf->data, cap);
	if (!data)
		return PAYTX_ENOMEM;
	buf->data = data;
	buf->cap = cap;
	return 0;
}

void paytx_buf_init(struct paytx_buf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}

void paytx_buf_finish(struct paytx_buf *buf)
{
	free(buf->data);
	paytx_buf_init(buf);
}

/* Empty the buffer but keep its memory for the next message. */
void paytx_buf_reset(struct paytx_buf *buf)
{
	buf->len = 0;
	if (buf->data)
		buf->data[0] = '\0';
}

int paytx_buf_append(struct paytx_buf *buf, const void *data, size_t len)
{
	int err;

	if (len == 0)
		return 0;
	if (!data)
		return PAYTX_EINVAL;
	err = buf_reserve(buf, len);
	if (err < 0)
		return err;
	memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return 0;
}
