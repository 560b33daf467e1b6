/* A bounded set of recently stored chunks per root: the server remembers which chunks a root's
 * clients uploaded before any version references them (an interrupted upload, a proposal that
 * lost its connection), so a retry does not send them again. Entries expire after a time to
 * live; when the set is full the oldest entry is dropped. Pure logic: the clock is a
 * parameter. Not thread-safe: one owner. */
#ifndef QS_CORE_RECENT_H
#define QS_CORE_RECENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sha256.h"

struct qs_recent;

/* A set of at most capacity (1..2^24) entries living ttl_ms each. Caller frees with
 * qs_recent_free. Errors: QS_EINVAL (capacity), QS_ENOMEM. */
int qs_recent_new(size_t capacity, uint64_t ttl_ms, struct qs_recent **out);
void qs_recent_free(struct qs_recent *r);
/* Remembers (root_id, hash) at now_ms (re-adding refreshes its time, not its place in the
 * eviction order). hash is borrowed. */
void qs_recent_add(struct qs_recent *r, uint64_t root_id, const uint8_t hash[QS_SHA256_LEN],
		   uint64_t now_ms);
/* True if (root_id, hash) was added at most ttl_ms before now_ms and not evicted since. */
bool qs_recent_has(const struct qs_recent *r, uint64_t root_id, const uint8_t hash[QS_SHA256_LEN],
		   uint64_t now_ms);

#endif
