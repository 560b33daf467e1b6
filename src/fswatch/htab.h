/* A small open-addressing hash table (linear probing, backward-shift deletion) from a 64-bit
 * hash to a non-NULL pointer, for the watcher's maps (watch descriptor -> directory, path ->
 * pending event). Entries may share a hash: the caller's eq function tells them apart.
 * Internal to fswatch; one thread at a time. */
#ifndef QS_FSWATCH_HTAB_H
#define QS_FSWATCH_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qs_htab_slot {
	uint64_t hash;
	void *val; /* NULL: empty */
};

/* Invariants: cap is 0 or a power of two; count < cap / 2 + 1 after every insert. Iterate
 * by walking slots[0..cap) and skipping empty ones (no insert or remove meanwhile). */
struct qs_htab {
	struct qs_htab_slot *slots;
	size_t cap;
	size_t count;
};

/* True if the stored val is the entry the lookup's key names. */
typedef bool (*qs_htab_eq_fn)(const void *val, const void *key);

void qs_htab_init(struct qs_htab *t);
/* Frees the slots (not the values); the table is empty and reusable afterwards. */
void qs_htab_release(struct qs_htab *t);
/* Empties the table, keeping its storage. */
void qs_htab_clear(struct qs_htab *t);

/* The slot value of the first entry with this hash for which eq(val, key) holds, so the
 * caller may replace it (with another non-NULL pointer); NULL if there is none. */
void **qs_htab_find(struct qs_htab *t, uint64_t hash, qs_htab_eq_fn eq, const void *key);
/* Adds val (non-NULL) under hash, even if an equal entry exists. Errors: QS_ENOMEM. */
int qs_htab_insert(struct qs_htab *t, uint64_t hash, void *val);
/* Removes the entry qs_htab_find would return and returns its value (NULL if none). */
void *qs_htab_remove(struct qs_htab *t, uint64_t hash, qs_htab_eq_fn eq, const void *key);

uint64_t qs_htab_hash_bytes(const void *p, size_t n);
uint64_t qs_htab_hash_u64(uint64_t v);

#endif
