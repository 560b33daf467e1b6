/* Allocation wrappers and checked size arithmetic. Allocation failure is reported
 * (NULL), never hidden; sizes from peers or files go through qs_size_add/qs_size_mul. */
#ifndef QS_BASE_ALLOC_H
#define QS_BASE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Like malloc/calloc/realloc, but qs_malloc(0) returns a unique non-NULL pointer and
 * qs_calloc checks n * size for overflow. Free with qs_free (NULL is fine). */
void *qs_malloc(size_t size);
void *qs_calloc(size_t n, size_t size);
void *qs_realloc(void *p, size_t size);
void qs_free(void *p);

/* Returns a heap copy of the NUL-terminated s, or NULL on allocation failure. */
char *qs_strdup(const char *s);
/* Returns a heap copy of n bytes of s plus a terminating NUL, or NULL. */
char *qs_strndup(const char *s, size_t n);

/* Checked size arithmetic: write a + b (or a * b) to *out and return true, or return
 * false on overflow and leave *out untouched. */
bool qs_size_add(size_t a, size_t b, size_t *out);
bool qs_size_mul(size_t a, size_t b, size_t *out);

/* Makes the array *v of elem-byte items (*cap of them allocated) hold at least need items,
 * doubling its capacity (at least 16) as needed; *v and *cap change only on success.
 * Errors: QS_ENOMEM (also when the size would overflow). */
int qs_array_reserve(void **v, size_t *cap, size_t need, size_t elem);

/* Overwrites n bytes at p with zeros in a way the compiler does not elide (for secrets). */
void qs_wipe(void *p, size_t n);

#endif
