/* Bounded set of (root, chunk hash) with expiry (core/recent.h). The entries live in a ring
 * (the next slot to reuse is the oldest insertion) and are found through a chained hash
 * table of ring indices. Invariant: every used ring slot is on exactly one bucket chain. */
#include "core/recent.h"

#include <assert.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

#define RECENT_NONE UINT32_MAX
#define RECENT_CAPACITY_MAX ((size_t)1 << 24)

struct recent_entry {
	uint64_t root_id;
	uint64_t added_ms;
	uint8_t hash[QS_SHA256_LEN];
	uint32_t next; /* next slot on the same bucket chain, or RECENT_NONE */
	bool used;
};

struct qs_recent {
	struct recent_entry *ring;
	uint32_t *buckets;
	size_t capacity, nbuckets; /* nbuckets: a power of two >= capacity */
	size_t head;               /* ring slot the next new entry takes */
	uint64_t ttl_ms;
};

int qs_recent_new(size_t capacity, uint64_t ttl_ms, struct qs_recent **out)
{
	if (capacity == 0 || capacity > RECENT_CAPACITY_MAX)
		return QS_EINVAL;
	struct qs_recent *r = qs_calloc(1, sizeof(*r));
	if (r == NULL)
		return QS_ENOMEM;
	r->capacity = capacity;
	r->ttl_ms = ttl_ms;
	r->nbuckets = 1;
	while (r->nbuckets < capacity)
		r->nbuckets <<= 1;
	r->ring = qs_calloc(capacity, sizeof(*r->ring));
	r->buckets = qs_calloc(r->nbuckets, sizeof(*r->buckets));
	if (r->ring == NULL || r->buckets == NULL) {
		qs_recent_free(r);
		return QS_ENOMEM;
	}
	for (size_t i = 0; i < r->nbuckets; i++)
		r->buckets[i] = RECENT_NONE;
	*out = r;
	return 0;
}

void qs_recent_free(struct qs_recent *r)
{
	if (r == NULL)
		return;
	qs_free(r->ring);
	qs_free(r->buckets);
	qs_free(r);
}

/* Chunk hashes are uniformly distributed: their first bytes, mixed with the root, suffice. */
static size_t recent_bucket(const struct qs_recent *r, uint64_t root_id, const uint8_t *hash)
{
	uint64_t x;
	memcpy(&x, hash, sizeof(x));
	x ^= root_id * 0x9e3779b97f4a7c15u;
	return (size_t)(x & (r->nbuckets - 1));
}

static struct recent_entry *recent_find(const struct qs_recent *r, uint64_t root_id,
					const uint8_t *hash)
{
	for (uint32_t i = r->buckets[recent_bucket(r, root_id, hash)]; i != RECENT_NONE;
	     i = r->ring[i].next) {
		struct recent_entry *e = &r->ring[i];
		if (e->root_id == root_id && memcmp(e->hash, hash, QS_SHA256_LEN) == 0)
			return e;
	}
	return NULL;
}

/* Takes ring slot i off its bucket chain. */
static void recent_unlink(struct qs_recent *r, uint32_t i)
{
	uint32_t *link = &r->buckets[recent_bucket(r, r->ring[i].root_id, r->ring[i].hash)];
	while (*link != i) {
		assert(*link != RECENT_NONE);
		link = &r->ring[*link].next;
	}
	*link = r->ring[i].next;
}

void qs_recent_add(struct qs_recent *r, uint64_t root_id, const uint8_t hash[QS_SHA256_LEN],
		   uint64_t now_ms)
{
	struct recent_entry *e = recent_find(r, root_id, hash);
	if (e != NULL) {
		e->added_ms = now_ms;
		return;
	}
	uint32_t i = (uint32_t)r->head;
	r->head = (r->head + 1) % r->capacity;
	if (r->ring[i].used)
		recent_unlink(r, i);
	e = &r->ring[i];
	e->root_id = root_id;
	e->added_ms = now_ms;
	memcpy(e->hash, hash, QS_SHA256_LEN);
	e->used = true;
	size_t b = recent_bucket(r, root_id, hash);
	e->next = r->buckets[b];
	r->buckets[b] = i;
}

bool qs_recent_has(const struct qs_recent *r, uint64_t root_id, const uint8_t hash[QS_SHA256_LEN],
		   uint64_t now_ms)
{
	const struct recent_entry *e = recent_find(r, root_id, hash);
	return e != NULL && now_ms >= e->added_ms && now_ms - e->added_ms <= r->ttl_ms;
}
