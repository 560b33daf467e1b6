/* Tests for the version rules: every combination of server entry, proposal base and
 * proposal content in a small universe is classified and checked against a hand-written
 * table of all classes (each class either has its expected answer or is marked impossible),
 * then named scenarios, the version order, and the limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/version.h"

static struct qs_content content(enum qs_kind kind, uint8_t id)
{
	struct qs_content c;
	memset(&c, 0, sizeof(c));
	c.kind = kind;
	memset(c.hash, id, sizeof(c.hash));
	return c;
}

/* The universe: a tombstone, two files, a directory (twice, with two different
 * modes: hashes) and two symlinks. */
static const struct {
	enum qs_kind kind;
	uint8_t id;
} universe[] = {
	{QS_KIND_TOMBSTONE, 0}, {QS_KIND_TOMBSTONE, 9}, {QS_KIND_FILE, 1},    {QS_KIND_FILE, 2},
	{QS_KIND_DIR, 0},       {QS_KIND_DIR, 5},       {QS_KIND_SYMLINK, 1}, {QS_KIND_SYMLINK, 3},
};
#define UNIVERSE_N (sizeof(universe) / sizeof(universe[0]))

static const uint64_t server_versions[] = {0, 1, 2, 3, UINT64_MAX};
static const uint64_t bases[] = {0, 1, 2, 3, 4, UINT64_MAX - 1, UINT64_MAX};

/* Classes. Server: absent, tombstone, live. Base against server version v: zero, older
 * (0 < b < v), equal (0 < b == v), newer (b > v). Proposal against server content: a
 * tombstone, equal live content, different content of the same kind, a different kind. */
enum { S_ABSENT, S_TOMB, S_LIVE, S_N };
enum { B_ZERO, B_OLDER, B_EQUAL, B_NEWER, B_N };
enum { P_TOMB, P_EQUAL, P_SAME_KIND, P_OTHER_KIND, P_N };

enum outcome { IMPOSSIBLE, EPROTO_, FF, SAME, C_MM, C_DM, C_MD, C_CC, C_KIND };

/* Every class, in order, with its answer. */
static const struct {
	int s, b, p;
	enum outcome want;
} table[] = {
	{S_ABSENT, B_ZERO, P_TOMB, SAME}, /* deleting a path nobody ever had: nothing to do */
	{S_ABSENT, B_ZERO, P_EQUAL, IMPOSSIBLE},
	{S_ABSENT, B_ZERO, P_SAME_KIND, IMPOSSIBLE},
	{S_ABSENT, B_ZERO, P_OTHER_KIND, FF}, /* create: version 1 */
	{S_ABSENT, B_OLDER, P_TOMB, IMPOSSIBLE},
	{S_ABSENT, B_OLDER, P_EQUAL, IMPOSSIBLE},
	{S_ABSENT, B_OLDER, P_SAME_KIND, IMPOSSIBLE},
	{S_ABSENT, B_OLDER, P_OTHER_KIND, IMPOSSIBLE},
	{S_ABSENT, B_EQUAL, P_TOMB, IMPOSSIBLE},
	{S_ABSENT, B_EQUAL, P_EQUAL, IMPOSSIBLE},
	{S_ABSENT, B_EQUAL, P_SAME_KIND, IMPOSSIBLE},
	{S_ABSENT, B_EQUAL, P_OTHER_KIND, IMPOSSIBLE},
	{S_ABSENT, B_NEWER, P_TOMB, EPROTO_}, /* base the server never issued */
	{S_ABSENT, B_NEWER, P_EQUAL, IMPOSSIBLE},
	{S_ABSENT, B_NEWER, P_SAME_KIND, IMPOSSIBLE},
	{S_ABSENT, B_NEWER, P_OTHER_KIND, EPROTO_},

	{S_TOMB, B_ZERO, P_TOMB, SAME},
	{S_TOMB, B_ZERO, P_EQUAL, IMPOSSIBLE},
	{S_TOMB, B_ZERO, P_SAME_KIND, IMPOSSIBLE},
	{S_TOMB, B_ZERO, P_OTHER_KIND, FF}, /* create over a deleted path */
	{S_TOMB, B_OLDER, P_TOMB, SAME},    /* both deleted */
	{S_TOMB, B_OLDER, P_EQUAL, IMPOSSIBLE},
	{S_TOMB, B_OLDER, P_SAME_KIND, IMPOSSIBLE},
	{S_TOMB, B_OLDER, P_OTHER_KIND, C_MD},
	{S_TOMB, B_EQUAL, P_TOMB, SAME},
	{S_TOMB, B_EQUAL, P_EQUAL, IMPOSSIBLE},
	{S_TOMB, B_EQUAL, P_SAME_KIND, IMPOSSIBLE},
	{S_TOMB, B_EQUAL, P_OTHER_KIND, FF}, /* re-create on top of the tombstone it saw */
	{S_TOMB, B_NEWER, P_TOMB, EPROTO_},
	{S_TOMB, B_NEWER, P_EQUAL, IMPOSSIBLE},
	{S_TOMB, B_NEWER, P_SAME_KIND, IMPOSSIBLE},
	{S_TOMB, B_NEWER, P_OTHER_KIND, EPROTO_}, /* re-create with a base past the tombstone */

	{S_LIVE, B_ZERO, P_TOMB, C_DM}, /* a create-vs-create candidate deleted by its client */
	{S_LIVE, B_ZERO, P_EQUAL, SAME},
	{S_LIVE, B_ZERO, P_SAME_KIND, C_CC},
	{S_LIVE, B_ZERO, P_OTHER_KIND, C_KIND},
	{S_LIVE, B_OLDER, P_TOMB, C_DM},
	{S_LIVE, B_OLDER, P_EQUAL, SAME},
	{S_LIVE, B_OLDER, P_SAME_KIND, C_MM},
	{S_LIVE, B_OLDER, P_OTHER_KIND, C_KIND},
	{S_LIVE, B_EQUAL, P_TOMB, FF}, /* delete */
	{S_LIVE, B_EQUAL, P_EQUAL, SAME},
	{S_LIVE, B_EQUAL, P_SAME_KIND, FF}, /* modify */
	{S_LIVE, B_EQUAL, P_OTHER_KIND, FF},
	{S_LIVE, B_NEWER, P_TOMB, EPROTO_},
	{S_LIVE, B_NEWER, P_EQUAL, EPROTO_},
	{S_LIVE, B_NEWER, P_SAME_KIND, EPROTO_},
	{S_LIVE, B_NEWER, P_OTHER_KIND, EPROTO_},
};
#define TABLE_N (sizeof(table) / sizeof(table[0]))

static int server_class(const struct qs_version_entry *s)
{
	if (s->version == 0)
		return S_ABSENT;
	return s->content.kind == QS_KIND_TOMBSTONE ? S_TOMB : S_LIVE;
}

static int base_class(uint64_t b, uint64_t v)
{
	if (b == 0)
		return B_ZERO;
	if (b < v)
		return B_OLDER;
	return b == v ? B_EQUAL : B_NEWER;
}

/* Written without qs_content_equal: kinds and, for live kinds, the hash byte. */
static int proposal_class(enum qs_kind pk, uint8_t pid, enum qs_kind sk, uint8_t sid)
{
	if (pk == QS_KIND_TOMBSTONE)
		return P_TOMB;
	if (pk != sk)
		return P_OTHER_KIND;
	if (pid == sid)
		return P_EQUAL;
	return P_SAME_KIND;
}

static void test_table_is_complete(void **state)
{
	(void)state;
	size_t i = 0;
	for (int s = 0; s < S_N; s++) {
		for (int b = 0; b < B_N; b++) {
			for (int p = 0; p < P_N; p++, i++) {
				assert_true(i < TABLE_N);
				assert_int_equal(table[i].s, s);
				assert_int_equal(table[i].b, b);
				assert_int_equal(table[i].p, p);
			}
		}
	}
	assert_int_equal(i, TABLE_N);
}

static void expect_outcome(enum outcome want, const struct qs_version_entry *srv,
			   const struct qs_proposal *p)
{
	struct qs_decision d = {QS_VERDICT_SAME, QS_CONFLICT_NONE, 12345};
	int rc = qs_version_decide(srv, p, &d);
	if (want == EPROTO_) {
		assert_int_equal(rc, QS_EPROTO);
		assert_int_equal(d.version, 12345); /* untouched */
		return;
	}
	if (want == FF && srv->version == UINT64_MAX) {
		assert_int_equal(rc, QS_E2BIG);
		assert_int_equal(d.version, 12345);
		return;
	}
	assert_int_equal(rc, 0);
	switch (want) {
	case FF:
		assert_int_equal(d.verdict, QS_VERDICT_FAST_FORWARD);
		assert_int_equal(d.version, srv->version + 1);
		assert_int_equal(d.conflict, QS_CONFLICT_NONE);
		return;
	case SAME:
		assert_int_equal(d.verdict, QS_VERDICT_SAME);
		assert_int_equal(d.version, srv->version);
		assert_int_equal(d.conflict, QS_CONFLICT_NONE);
		return;
	default: break;
	}
	static const enum qs_conflict kinds[] = {
		[C_MM] = QS_CONFLICT_MODIFY_MODIFY, [C_DM] = QS_CONFLICT_DELETE_MODIFY,
		[C_MD] = QS_CONFLICT_MODIFY_DELETE, [C_CC] = QS_CONFLICT_CREATE_CREATE,
		[C_KIND] = QS_CONFLICT_KIND,
	};
	assert_int_equal(d.verdict, QS_VERDICT_CONFLICT);
	assert_int_equal(d.conflict, kinds[want]);
	assert_int_equal(d.version, srv->version); /* the server keeps its version */
}

static void test_all_combinations(void **state)
{
	(void)state;
	size_t hits[TABLE_N] = {0};
	for (size_t vi = 0; vi < sizeof(server_versions) / sizeof(server_versions[0]); vi++) {
		for (size_t si = 0; si < UNIVERSE_N; si++) {
			struct qs_version_entry srv = {server_versions[vi],
						       content(universe[si].kind, universe[si].id)};
			if (srv.version == 0 && srv.content.kind != QS_KIND_TOMBSTONE)
				continue; /* invalid; see test_invalid_inputs */
			for (size_t bi = 0; bi < sizeof(bases) / sizeof(bases[0]); bi++) {
				for (size_t pi = 0; pi < UNIVERSE_N; pi++) {
					struct qs_proposal p = {
						bases[bi],
						content(universe[pi].kind, universe[pi].id)};
					int s = server_class(&srv);
					int b = base_class(p.base_version, srv.version);
					int c = proposal_class(universe[pi].kind, universe[pi].id,
							       universe[si].kind, universe[si].id);
					size_t row =
						((size_t)s * B_N + (size_t)b) * P_N + (size_t)c;
					assert_int_not_equal(table[row].want, IMPOSSIBLE);
					hits[row]++;
					enum outcome want = table[row].want;
					/* A directory's mode against another: the proposal wins,
					 * whatever its base (never a conflict). */
					if (c == P_SAME_KIND && universe[pi].kind == QS_KIND_DIR &&
					    (want == C_CC || want == C_MM))
						want = FF;
					expect_outcome(want, &srv, &p);
				}
			}
		}
	}
	/* The universe reaches every possible class, so the table is tested everywhere. */
	for (size_t i = 0; i < TABLE_N; i++)
		assert_int_equal(hits[i] > 0, table[i].want != IMPOSSIBLE);
}

static void test_invalid_inputs(void **state)
{
	(void)state;
	struct qs_decision d = {QS_VERDICT_SAME, QS_CONFLICT_NONE, 7};
	struct qs_version_entry srv = {1, content(QS_KIND_FILE, 1)};
	struct qs_proposal p = {1, content(QS_KIND_FILE, 2)};
	struct qs_version_entry bad_srv = srv;
	bad_srv.content.kind = (enum qs_kind)4;
	assert_int_equal(qs_version_decide(&bad_srv, &p, &d), QS_EINVAL);
	bad_srv.content.kind = (enum qs_kind) - 1;
	assert_int_equal(qs_version_decide(&bad_srv, &p, &d), QS_EINVAL);
	struct qs_version_entry live_at_zero = {0, content(QS_KIND_FILE, 1)};
	assert_int_equal(qs_version_decide(&live_at_zero, &p, &d), QS_EINVAL);
	struct qs_proposal bad_p = p;
	bad_p.content.kind = (enum qs_kind)77;
	assert_int_equal(qs_version_decide(&srv, &bad_p, &d), QS_EPROTO);
	assert_int_equal(d.version, 7);
}

/* One path's life, step by step, as the server would apply it. */
static void test_history_scenario(void **state)
{
	(void)state;
	struct qs_version_entry srv = {0, content(QS_KIND_TOMBSTONE, 0)};
	struct qs_decision d;
	struct qs_proposal create = {0, content(QS_KIND_FILE, 1)};
	assert_int_equal(qs_version_decide(&srv, &create, &d), 0);
	assert_int_equal(d.verdict, QS_VERDICT_FAST_FORWARD);
	assert_int_equal(d.version, 1);
	srv = (struct qs_version_entry){1, create.content};
	/* The same proposal again (a retry after a lost answer): same content, no new version. */
	assert_int_equal(qs_version_decide(&srv, &create, &d), 0);
	assert_int_equal(d.verdict, QS_VERDICT_SAME);
	assert_int_equal(d.version, 1);
	struct qs_proposal modify = {1, content(QS_KIND_FILE, 2)};
	assert_int_equal(qs_version_decide(&srv, &modify, &d), 0);
	assert_int_equal(d.version, 2);
	srv = (struct qs_version_entry){2, modify.content};
	/* A second client still at version 1 edits differently: modify-vs-modify. */
	struct qs_proposal late = {1, content(QS_KIND_FILE, 3)};
	assert_int_equal(qs_version_decide(&srv, &late, &d), 0);
	assert_int_equal(d.verdict, QS_VERDICT_CONFLICT);
	assert_int_equal(d.conflict, QS_CONFLICT_MODIFY_MODIFY);
	assert_int_equal(d.version, 2);
	/* A third client at version 1 made the same edit as the server has: it adopts 2. */
	struct qs_proposal same = {1, content(QS_KIND_FILE, 2)};
	assert_int_equal(qs_version_decide(&srv, &same, &d), 0);
	assert_int_equal(d.verdict, QS_VERDICT_SAME);
	assert_int_equal(d.version, 2);
	struct qs_proposal del = {2, content(QS_KIND_TOMBSTONE, 0)};
	assert_int_equal(qs_version_decide(&srv, &del, &d), 0);
	assert_int_equal(d.version, 3);
	srv = (struct qs_version_entry){3, del.content};
	/* Deleting again, from an older base: both deleted, nothing to store. */
	struct qs_proposal del_old = {1, content(QS_KIND_TOMBSTONE, 0)};
	assert_int_equal(qs_version_decide(&srv, &del_old, &d), 0);
	assert_int_equal(d.verdict, QS_VERDICT_SAME);
	assert_int_equal(d.version, 3);
	/* Editing the deleted file from version 2: modify-vs-delete. */
	struct qs_proposal edit_old = {2, content(QS_KIND_FILE, 4)};
	assert_int_equal(qs_version_decide(&srv, &edit_old, &d), 0);
	assert_int_equal(d.conflict, QS_CONFLICT_MODIFY_DELETE);
	/* Re-creating on top of the tombstone, knowing it or not: version 4. */
	struct qs_proposal recreate = {3, content(QS_KIND_DIR, 0)};
	assert_int_equal(qs_version_decide(&srv, &recreate, &d), 0);
	assert_int_equal(d.version, 4);
	recreate.base_version = 0;
	assert_int_equal(qs_version_decide(&srv, &recreate, &d), 0);
	assert_int_equal(d.verdict, QS_VERDICT_FAST_FORWARD);
	assert_int_equal(d.version, 4);
	/* ... but not with a base past it. */
	recreate.base_version = 4;
	assert_int_equal(qs_version_decide(&srv, &recreate, &d), QS_EPROTO);
}

static void test_content_equal(void **state)
{
	(void)state;
	struct qs_content a = content(QS_KIND_DIR, 1), b = content(QS_KIND_DIR, 2);
	assert_false(qs_content_equal(&a, &b)); /* a directory's hash is its mode's */
	b = content(QS_KIND_DIR, 1);
	assert_true(qs_content_equal(&a, &b));
	a = content(QS_KIND_TOMBSTONE, 1);
	b = content(QS_KIND_TOMBSTONE, 2);
	assert_true(qs_content_equal(&a, &b));
	a = content(QS_KIND_FILE, 1);
	b = content(QS_KIND_FILE, 1);
	b.hash[QS_CONTENT_HASH_LEN - 1] ^= 1; /* the last byte counts */
	assert_false(qs_content_equal(&a, &b));
	b = content(QS_KIND_SYMLINK, 1);
	assert_false(qs_content_equal(&a, &b)); /* same hash, other kind */
	assert_true(qs_content_valid(&a));
	a.kind = (enum qs_kind)4;
	assert_false(qs_content_valid(&a));
}

static void test_compare(void **state)
{
	(void)state;
	static const struct {
		uint64_t av;
		enum qs_kind ak;
		uint8_t aid;
		uint64_t bv;
		enum qs_kind bk;
		uint8_t bid;
		int rc, order;
	} cases[] = {
		{0, QS_KIND_TOMBSTONE, 0, 0, QS_KIND_TOMBSTONE, 0, 0, 0},
		{0, QS_KIND_TOMBSTONE, 0, 1, QS_KIND_FILE, 1, 0, -1},
		{1, QS_KIND_FILE, 1, 0, QS_KIND_TOMBSTONE, 0, 0, 1},
		{2, QS_KIND_FILE, 1, 1, QS_KIND_FILE, 2, 0, 1},
		{2, QS_KIND_TOMBSTONE, 0, 3, QS_KIND_FILE, 2, 0, -1},
		{2, QS_KIND_FILE, 1, 2, QS_KIND_FILE, 1, 0, 0},
		{2, QS_KIND_DIR, 1, 2, QS_KIND_DIR, 1, 0, 0},
		{2, QS_KIND_DIR, 1, 2, QS_KIND_DIR, 2, QS_EPROTO, 0},
		{UINT64_MAX, QS_KIND_FILE, 1, UINT64_MAX - 1, QS_KIND_FILE, 1, 0, 1},
		{2, QS_KIND_FILE, 1, 2, QS_KIND_FILE, 2, QS_EPROTO, 0},
		{2, QS_KIND_FILE, 1, 2, QS_KIND_TOMBSTONE, 0, QS_EPROTO, 0},
		{0, QS_KIND_FILE, 1, 1, QS_KIND_FILE, 1, QS_EINVAL, 0},
		{1, (enum qs_kind)9, 1, 1, QS_KIND_FILE, 1, QS_EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct qs_version_entry a = {cases[i].av, content(cases[i].ak, cases[i].aid)};
		struct qs_version_entry b = {cases[i].bv, content(cases[i].bk, cases[i].bid)};
		int order = 99, back = 99;
		assert_int_equal(qs_version_compare(&a, &b, &order), cases[i].rc);
		assert_int_equal(qs_version_compare(&b, &a, &back), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_int_equal(order, cases[i].order);
			assert_int_equal(back, -cases[i].order);
		} else {
			assert_int_equal(order, 99);
		}
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(qs_verdict_name(QS_VERDICT_FAST_FORWARD), "fast-forward");
	assert_string_equal(qs_verdict_name((enum qs_verdict)0), "?");
	assert_string_equal(qs_conflict_name(QS_CONFLICT_MODIFY_DELETE), "modify-vs-delete");
	assert_string_equal(qs_conflict_name(QS_CONFLICT_DELETE_MODIFY), "delete-vs-modify");
	for (int c = QS_CONFLICT_NONE; c <= QS_CONFLICT_KIND; c++)
		assert_string_not_equal(qs_conflict_name((enum qs_conflict)c), "?");
	assert_string_equal(qs_conflict_name((enum qs_conflict)6), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_is_complete),
		cmocka_unit_test(test_all_combinations),
		cmocka_unit_test(test_invalid_inputs),
		cmocka_unit_test(test_history_scenario),
		cmocka_unit_test(test_content_equal),
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
