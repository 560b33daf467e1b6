/* Open-addressing hash table (see htab.h). Load stays at most one half, so probes are short;
 * removal shifts later entries of the probe run back instead of leaving tombstones. */
#include "fswatch/htab.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

void qs_htab_init(struct qs_htab *t)
{
	memset(t, 0, sizeof(*t));
}

void qs_htab_release(struct qs_htab *t)
{
	qs_free(t->slots);
	qs_htab_init(t);
}

void qs_htab_clear(struct qs_htab *t)
{
	if (t->cap > 0)
		memset(t->slots, 0, t->cap * sizeof(t->slots[0]));
	t->count = 0;
}

static size_t find_slot(const struct qs_htab *t, uint64_t hash, qs_htab_eq_fn eq, const void *key)
{
	if (t->cap == 0)
		return SIZE_MAX;
	size_t mask = t->cap - 1;
	for (size_t i = (size_t)hash & mask; t->slots[i].val != NULL; i = (i + 1) & mask) {
		if (t->slots[i].hash == hash && eq(t->slots[i].val, key))
			return i;
	}
	return SIZE_MAX;
}

void **qs_htab_find(struct qs_htab *t, uint64_t hash, qs_htab_eq_fn eq, const void *key)
{
	size_t i = find_slot(t, hash, eq, key);
	return i == SIZE_MAX ? NULL : &t->slots[i].val;
}

static void place(struct qs_htab_slot *slots, size_t cap, uint64_t hash, void *val)
{
	size_t mask = cap - 1, i = (size_t)hash & mask;
	while (slots[i].val != NULL)
		i = (i + 1) & mask;
	slots[i].hash = hash;
	slots[i].val = val;
}

int qs_htab_insert(struct qs_htab *t, uint64_t hash, void *val)
{
	if ((t->count + 1) * 2 > t->cap) {
		size_t ncap = t->cap == 0 ? 16 : t->cap * 2;
		struct qs_htab_slot *ns = qs_calloc(ncap, sizeof(*ns));
		if (ns == NULL)
			return QS_ENOMEM;
		for (size_t i = 0; i < t->cap; i++) {
			if (t->slots[i].val != NULL)
				place(ns, ncap, t->slots[i].hash, t->slots[i].val);
		}
		qs_free(t->slots);
		t->slots = ns;
		t->cap = ncap;
	}
	place(t->slots, t->cap, hash, val);
	t->count++;
	return 0;
}

void *qs_htab_remove(struct qs_htab *t, uint64_t hash, qs_htab_eq_fn eq, const void *key)
{
	size_t i = find_slot(t, hash, eq, key);
	if (i == SIZE_MAX)
		return NULL;
	void *val = t->slots[i].val;
	size_t mask = t->cap - 1;
	/* Pull back every later entry of the run that may live at i: one whose home is not in
	 * the cyclic range (i, j]. */
	for (size_t j = (i + 1) & mask; t->slots[j].val != NULL; j = (j + 1) & mask) {
		size_t home = (size_t)t->slots[j].hash & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i].val = NULL;
	t->count--;
	return val;
}

uint64_t qs_htab_hash_bytes(const void *p, size_t n)
{
	const unsigned char *u = p;
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a, then a final mix for the low bits */
	for (size_t i = 0; i < n; i++)
		h = (h ^ u[i]) * 0x100000001b3u;
	return qs_htab_hash_u64(h);
}

uint64_t qs_htab_hash_u64(uint64_t v)
{
	v ^= v >> 30; /* splitmix64's finalizer */
	v *= 0xbf58476d1ce4e5b9u;
	v ^= v >> 27;
	v *= 0x94d049bb133111ebu;
	return v ^ (v >> 31);
}
