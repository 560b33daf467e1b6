/* Tests for the sync planner.
 * 1. Every input in a small universe (local x index x server) is classified by code written
 *    here, and the planner's action is checked against a table listing every class (each
 *    with its action or marked impossible); proposals are checked against the version rules,
 *    and doing the action must leave nothing more to do.
 * 2. A seeded simulation: a server using the version rules and three replicas making random
 *    edits, syncing path by path with stale knowledge of the server, in random order; at
 *    quiescence all agree and every edit a sync step saw is held by the server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/planner.h"
#include "core/version.h"

/* ---- Contents: a kind and a small id stored in the hash. ---- */

static struct qs_content mk(enum qs_kind kind, uint32_t id)
{
	struct qs_content c;
	memset(&c, 0, sizeof(c));
	c.kind = kind;
	memcpy(c.hash, &id, sizeof(id));
	return c;
}

static uint32_t id_of(const struct qs_content *c)
{
	uint32_t id;
	memcpy(&id, c->hash, sizeof(id));
	return id;
}

static const struct qs_content tomb = {QS_KIND_TOMBSTONE, {0}};

/* The universe of the exhaustive test: a tombstone, three files, a directory, a symlink. */
#define U_N 6
static struct qs_content universe(size_t i)
{
	static const enum qs_kind kinds[U_N] = {QS_KIND_TOMBSTONE, QS_KIND_FILE, QS_KIND_FILE,
						QS_KIND_FILE,      QS_KIND_DIR,  QS_KIND_SYMLINK};
	return mk(kinds[i], (uint32_t)i);
}

/* Equality written here, not through qs_content_equal: universe ids are unique per entry. */
static bool same(const struct qs_content *a, const struct qs_content *b)
{
	return a->kind == b->kind && id_of(a) == id_of(b);
}

static bool live(const struct qs_content *c)
{
	return c->kind != QS_KIND_TOMBSTONE;
}

/* ---- The class table. ---- */

enum { I_NONE, I_LIVE, I_TOMB, C_LIVE, C_TOMB, IDX_N }; /* index: agreed or conflicted */
enum { L_REF, L_GONE, L_NEW, LOC_N }; /* local vs what the fingerprint was taken of */
enum { V_SAME, V_NEWER, VER_N };      /* server version vs the index's reference version */
enum { S_EQ, S_TOMB, S_LIVE, SRV_N }; /* server content: equal to local, deleted, other */

enum want { X, NOTH, UP, DELR, DOWN, DELL, CONF, ADOPT }; /* X: no input falls here */

static const enum qs_action action_of[] = {
	[NOTH] = QS_ACTION_NOTHING,       [UP] = QS_ACTION_UPLOAD,
	[DELR] = QS_ACTION_DELETE_REMOTE, [DOWN] = QS_ACTION_DOWNLOAD,
	[DELL] = QS_ACTION_DELETE_LOCAL,  [CONF] = QS_ACTION_CONFLICT,
	[ADOPT] = QS_ACTION_ADOPT,
};

static const struct {
	int idx, loc, ver;
	enum want srv[SRV_N]; /* S_EQ, S_TOMB, S_LIVE */
} table[] = {
	/* No index entry: the client never had the path. */
	{I_NONE, L_REF, V_SAME, {NOTH, X, X}},
	{I_NONE, L_REF, V_NEWER, {ADOPT, X, DOWN}},
	{I_NONE, L_GONE, V_SAME, {X, X, X}},
	{I_NONE, L_GONE, V_NEWER, {X, X, X}},
	{I_NONE, L_NEW, V_SAME, {X, UP, X}},         /* create */
	{I_NONE, L_NEW, V_NEWER, {ADOPT, UP, CONF}}, /* create over a tombstone; create-create */
	/* Agreed on live content at the base version. */
	{I_LIVE, L_REF, V_SAME, {NOTH, X, X}},
	{I_LIVE, L_REF, V_NEWER, {ADOPT, DELL, DOWN}},
	{I_LIVE, L_GONE, V_SAME, {X, X, DELR}},
	{I_LIVE, L_GONE, V_NEWER, {ADOPT, X, CONF}}, /* delete-vs-modify */
	{I_LIVE, L_NEW, V_SAME, {X, X, UP}},
	{I_LIVE, L_NEW, V_NEWER, {ADOPT, CONF, CONF}}, /* modify-vs-delete, modify-vs-modify */
	/* Agreed that the path is deleted. */
	{I_TOMB, L_REF, V_SAME, {NOTH, X, X}},
	{I_TOMB, L_REF, V_NEWER, {ADOPT, X, DOWN}},
	{I_TOMB, L_GONE, V_SAME, {X, X, X}},
	{I_TOMB, L_GONE, V_NEWER, {X, X, X}},
	{I_TOMB, L_NEW, V_SAME, {X, UP, X}},
	{I_TOMB, L_NEW, V_NEWER, {ADOPT, UP, CONF}},
	/* Conflicted, base live: the local file is our candidate until it changes. */
	{C_LIVE, L_REF, V_SAME, {ADOPT, NOTH, NOTH}},  /* waiting for the user's choice */
	{C_LIVE, L_REF, V_NEWER, {ADOPT, DELL, DOWN}}, /* the server moved on: follow it */
	{C_LIVE, L_GONE, V_SAME, {ADOPT, X, CONF}},
	{C_LIVE, L_GONE, V_NEWER, {ADOPT, X, CONF}},
	{C_LIVE, L_NEW, V_SAME, {ADOPT, CONF, CONF}},
	{C_LIVE, L_NEW, V_NEWER, {ADOPT, CONF, CONF}},
	/* Conflicted create (base is a tombstone or nothing). */
	{C_TOMB, L_REF, V_SAME, {ADOPT, NOTH, NOTH}},
	{C_TOMB, L_REF, V_NEWER, {ADOPT, DELL, DOWN}},
	{C_TOMB, L_GONE, V_SAME, {ADOPT, X, DOWN}}, /* the user withdrew the create */
	{C_TOMB, L_GONE, V_NEWER, {ADOPT, X, DOWN}},
	{C_TOMB, L_NEW, V_SAME, {ADOPT, UP, CONF}},
	{C_TOMB, L_NEW, V_NEWER, {ADOPT, UP, CONF}},
};
#define TABLE_N (sizeof(table) / sizeof(table[0]))

static void test_table_is_complete(void **state)
{
	(void)state;
	size_t i = 0;
	for (int idx = 0; idx < IDX_N; idx++) {
		for (int loc = 0; loc < LOC_N; loc++) {
			for (int ver = 0; ver < VER_N; ver++, i++) {
				assert_true(i < TABLE_N);
				assert_int_equal(table[i].idx, idx);
				assert_int_equal(table[i].loc, loc);
				assert_int_equal(table[i].ver, ver);
			}
		}
	}
	assert_int_equal(i, TABLE_N);
}

/* ---- The exhaustive enumeration. ---- */

struct input {
	struct qs_plan_local local;
	struct qs_plan_index index;
	struct qs_version_entry server;
};

static const struct qs_content *ref_of(const struct qs_plan_index *ix)
{
	return ix->conflicted ? &ix->candidate : &ix->base;
}

static uint64_t ref_version_of(const struct qs_plan_index *ix)
{
	return ix->conflicted ? ix->conflict_version : ix->base_version;
}

/* What the local file holds, by the contract in planner.h. */
static struct qs_content effective(const struct input *in)
{
	if (!in->local.present)
		return tomb;
	if (!in->local.changed && live(ref_of(&in->index)))
		return *ref_of(&in->index);
	return in->local.content;
}

/* The planner's error for an invalid input, in the order it checks, or 0. */
static int expected_error(const struct input *in)
{
	const struct qs_plan_index *ix = &in->index;
	if (ix->base_version == 0 && live(&ix->base))
		return QS_EINVAL;
	if (ix->conflicted && (ix->conflict_version <= ix->base_version ||
			       (!live(&ix->base) && !live(&ix->candidate))))
		return QS_EINVAL;
	struct qs_content e = effective(in);
	if (in->local.present && !live(&e))
		return QS_EINVAL;
	if (in->server.version == 0 && live(&in->server.content))
		return QS_EINVAL;
	if (in->server.version < ref_version_of(ix))
		return QS_EINVAL;
	if (!ix->conflicted && in->server.version == ix->base_version &&
	    !same(&in->server.content, &ix->base))
		return QS_EPROTO;
	return 0;
}

static void classify(const struct input *in, int *idx, int *loc, int *ver, int *srv)
{
	const struct qs_plan_index *ix = &in->index;
	if (ix->conflicted)
		*idx = live(&ix->base) ? C_LIVE : C_TOMB;
	else if (ix->base_version == 0)
		*idx = I_NONE;
	else
		*idx = live(&ix->base) ? I_LIVE : I_TOMB;
	struct qs_content e = effective(in);
	if (same(&e, ref_of(ix)))
		*loc = L_REF;
	else
		*loc = live(&e) ? L_NEW : L_GONE;
	*ver = in->server.version == ref_version_of(ix) ? V_SAME : V_NEWER;
	if (same(&in->server.content, &e))
		*srv = S_EQ;
	else
		*srv = live(&in->server.content) ? S_LIVE : S_TOMB;
}

/* Does the planned action with the server as it is, and returns the next input. Checks
 * that proposals get the verdict the action promised and that nothing is overwritten
 * that the server does not hold. */
static struct input perform(const struct input *in, const struct qs_plan *plan)
{
	struct input next = *in;
	struct qs_content e = effective(in);
	struct qs_decision d;
	switch (plan->action) {
	case QS_ACTION_NOTHING: return next;
	case QS_ACTION_UPLOAD:
	case QS_ACTION_DELETE_REMOTE:
	case QS_ACTION_CONFLICT:
		assert_true(same(&plan->proposal.content, &e));
		assert_int_equal(plan->proposal.base_version,
				 live(&in->index.base) ? in->index.base_version : 0);
		assert_int_equal(qs_version_decide(&in->server, &plan->proposal, &d), 0);
		assert_int_equal(d.verdict, plan->action == QS_ACTION_CONFLICT
						    ? QS_VERDICT_CONFLICT
						    : QS_VERDICT_FAST_FORWARD);
		if (d.verdict == QS_VERDICT_FAST_FORWARD)
			next.server = (struct qs_version_entry){d.version, e};
		assert_int_equal(qs_plan_index_answer(&next.index, &plan->proposal, &d), 0);
		break;
	case QS_ACTION_DOWNLOAD:
	case QS_ACTION_DELETE_LOCAL:
		/* Only content the server holds (base or candidate), or nothing, is replaced. */
		assert_true(!live(&e) || same(&e, ref_of(&in->index)));
		assert_true(live(&in->server.content) == (plan->action == QS_ACTION_DOWNLOAD));
		__attribute__((fallthrough));
	case QS_ACTION_ADOPT:
		assert_int_equal(plan->version, in->server.version);
		e = in->server.content;
		qs_plan_index_agree(&next.index, &in->server);
		break;
	default: fail();
	}
	next.local.present = live(&e);
	next.local.changed = false;
	next.local.content = e;
	return next;
}

static void check_one(const struct input *in, size_t *hits)
{
	struct qs_plan plan = {QS_ACTION_ADOPT, {7, tomb}, 7};
	int rc = qs_plan_path(&in->local, &in->index, &in->server, &plan);
	int err = expected_error(in);
	assert_int_equal(rc, err);
	if (err != 0) {
		assert_int_equal(plan.version, 7); /* untouched */
		return;
	}
	int idx, loc, ver, srv;
	classify(in, &idx, &loc, &ver, &srv);
	size_t row = ((size_t)idx * LOC_N + (size_t)loc) * VER_N + (size_t)ver;
	enum want w = table[row].srv[srv];
	if (w == X)
		fail_msg("input falls in a class marked impossible: row %zu, server %d", row, srv);
	hits[row * SRV_N + (size_t)srv]++;
	if (plan.action != action_of[w])
		fail_msg("row %zu server %d: got %s, want %s", row, srv,
			 qs_action_name(plan.action), qs_action_name(action_of[w]));
	/* Once done, the action leaves nothing to do. */
	struct input next = perform(in, &plan);
	struct qs_plan again;
	assert_int_equal(qs_plan_path(&next.local, &next.index, &next.server, &again), 0);
	assert_int_equal(again.action, QS_ACTION_NOTHING);
}

static void for_each_server(struct input *in, size_t *hits)
{
	for (uint64_t v = 0; v <= 4; v++) {
		for (size_t s = 0; s < U_N; s++) {
			in->server.version = v;
			in->server.content = universe(s);
			check_one(in, hits);
		}
	}
}

static void for_each_local(struct input *in, size_t *hits)
{
	for (int present = 0; present <= 1; present++) {
		for (int changed = 0; changed <= 1; changed++) {
			for (size_t c = 0; c < U_N; c++) {
				in->local.present = present;
				in->local.changed = changed;
				in->local.content = universe(c);
				for_each_server(in, hits);
			}
		}
	}
}

static void test_every_combination(void **state)
{
	(void)state;
	size_t *hits = calloc(TABLE_N * SRV_N, sizeof(*hits));
	assert_non_null(hits);
	struct input in;
	memset(&in, 0, sizeof(in));
	for (uint64_t b = 0; b <= 2; b++) {
		for (size_t ic = 0; ic < U_N; ic++) {
			in.index.base_version = b;
			in.index.base = universe(ic);
			in.index.conflicted = false;
			in.index.conflict_version = 0;
			in.index.candidate = tomb;
			for_each_local(&in, hits);
			in.index.conflicted = true;
			for (uint64_t cv = 1; cv <= 3; cv++) {
				for (size_t cc = 0; cc < U_N; cc++) {
					in.index.conflict_version = cv;
					in.index.candidate = universe(cc);
					for_each_local(&in, hits);
				}
			}
		}
	}
	/* Every class with an action was reached; none marked impossible was. */
	for (size_t row = 0; row < TABLE_N; row++) {
		for (size_t s = 0; s < SRV_N; s++) {
			if ((hits[row * SRV_N + s] > 0) != (table[row].srv[s] != X))
				fail_msg("row %zu server %zu: %zu hits", row, s,
					 hits[row * SRV_N + s]);
		}
	}
	free(hits);
}

/* ---- Named cases: a few by hand, with the exact plan. ---- */

static void test_named_cases(void **state)
{
	(void)state;
	struct qs_content a = mk(QS_KIND_FILE, 1), b = mk(QS_KIND_FILE, 2);
	struct qs_plan p;
	/* A new local file, server knows nothing: upload as a create. */
	struct qs_plan_local new_file = {true, true, a};
	struct qs_plan_index none;
	memset(&none, 0, sizeof(none));
	struct qs_version_entry absent = {0, tomb};
	assert_int_equal(qs_plan_path(&new_file, &none, &absent, &p), 0);
	assert_int_equal(p.action, QS_ACTION_UPLOAD);
	assert_int_equal(p.proposal.base_version, 0);
	assert_true(same(&p.proposal.content, &a));
	/* An unchanged file need not be hashed: its content field is not read. */
	struct qs_plan_index at3 = {3, a, false, 0, tomb};
	struct qs_plan_local unchanged = {true, false, mk((enum qs_kind)99, 0)};
	struct qs_version_entry s4 = {4, b};
	assert_int_equal(qs_plan_path(&unchanged, &at3, &s4, &p), 0);
	assert_int_equal(p.action, QS_ACTION_DOWNLOAD);
	assert_int_equal(p.version, 4);
	/* Touched but identical: nothing to send. */
	struct qs_plan_local touched = {true, true, a};
	struct qs_version_entry s3 = {3, a};
	assert_int_equal(qs_plan_path(&touched, &at3, &s3, &p), 0);
	assert_int_equal(p.action, QS_ACTION_NOTHING);
	/* Deleted locally while the server moved: a conflict proposal with base 3. */
	struct qs_plan_local gone = {false, true, tomb};
	assert_int_equal(qs_plan_path(&gone, &at3, &s4, &p), 0);
	assert_int_equal(p.action, QS_ACTION_CONFLICT);
	assert_int_equal(p.proposal.base_version, 3);
	assert_int_equal(p.proposal.content.kind, QS_KIND_TOMBSTONE);
	/* After the server's answer, the entry waits for the user's choice. */
	struct qs_decision d;
	assert_int_equal(qs_version_decide(&s4, &p.proposal, &d), 0);
	assert_int_equal(d.conflict, QS_CONFLICT_DELETE_MODIFY);
	struct qs_plan_index ix = at3;
	assert_int_equal(qs_plan_index_answer(&ix, &p.proposal, &d), 0);
	assert_true(ix.conflicted);
	assert_int_equal(ix.base_version, 3);
	assert_int_equal(ix.conflict_version, 4);
	struct qs_plan_local still_gone = {false, false, tomb};
	assert_int_equal(qs_plan_path(&still_gone, &ix, &s4, &p), 0);
	assert_int_equal(p.action, QS_ACTION_NOTHING);
	/* The user chose: version 5 arrives and is downloaded. */
	struct qs_version_entry s5 = {5, b};
	assert_int_equal(qs_plan_path(&still_gone, &ix, &s5, &p), 0);
	assert_int_equal(p.action, QS_ACTION_DOWNLOAD);
	assert_int_equal(p.version, 5);
	qs_plan_index_agree(&ix, &s5);
	assert_false(ix.conflicted);
	assert_int_equal(ix.base_version, 5);
}

static void test_invalid_inputs(void **state)
{
	(void)state;
	struct qs_content a = mk(QS_KIND_FILE, 1);
	struct qs_plan_local loc = {true, true, a};
	struct qs_plan_index ix = {2, a, false, 0, tomb};
	struct qs_version_entry srv = {2, a};
	struct qs_plan p;
	struct qs_plan_index bad = ix;
	bad.base.kind = (enum qs_kind)8;
	assert_int_equal(qs_plan_path(&loc, &bad, &srv, &p), QS_EINVAL);
	bad = ix;
	bad.conflicted = true;
	bad.conflict_version = 3;
	bad.candidate.kind = (enum qs_kind)8;
	assert_int_equal(qs_plan_path(&loc, &bad, &srv, &p), QS_EINVAL);
	struct qs_plan_local bad_loc = {true, true, mk((enum qs_kind)8, 1)};
	assert_int_equal(qs_plan_path(&bad_loc, &ix, &srv, &p), QS_EINVAL);
	struct qs_version_entry bad_srv = {2, mk((enum qs_kind)8, 1)};
	assert_int_equal(qs_plan_path(&loc, &ix, &bad_srv, &p), QS_EINVAL);
	/* Answers: an unknown verdict, or a conflict that is not newer than the base. */
	struct qs_proposal prop = {2, mk(QS_KIND_FILE, 2)};
	struct qs_decision d = {(enum qs_verdict)0, QS_CONFLICT_NONE, 3};
	struct qs_plan_index before = ix;
	assert_int_equal(qs_plan_index_answer(&ix, &prop, &d), QS_EINVAL);
	d = (struct qs_decision){QS_VERDICT_CONFLICT, QS_CONFLICT_MODIFY_MODIFY, 2};
	assert_int_equal(qs_plan_index_answer(&ix, &prop, &d), QS_EINVAL);
	struct qs_plan_index created = {0, tomb, false, 0, tomb};
	struct qs_proposal del0 = {0, tomb};
	d.version = 3;
	assert_int_equal(qs_plan_index_answer(&created, &del0, &d), QS_EINVAL);
	assert_int_equal(ix.base_version, before.base_version);
	assert_false(ix.conflicted);
	assert_int_equal(created.base_version, 0);
	assert_false(created.conflicted);
	assert_string_equal(qs_action_name(QS_ACTION_DELETE_REMOTE), "delete-remote");
	assert_string_equal(qs_action_name((enum qs_action)7), "?");
}

/* ---- The simulation. ---- */

#define SIM_REPLICAS 3
#define SIM_PATHS 3
#define SIM_LOG 1024
#define SIM_IDS 1024
#define SIM_STEPS 200
#define SIM_SEEDS 2000

struct sim_rng {
	uint64_t state;
};

/* splitmix64: small, seedable, good enough to pick test moves. */
static uint64_t rng_next(struct sim_rng *r)
{
	uint64_t z = (r->state += 0x9E3779B97F4A7C15u);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

static uint32_t rng_below(struct sim_rng *r, uint32_t n)
{
	return (uint32_t)(rng_next(r) % n);
}

struct sim_log {
	struct qs_content v[SIM_LOG];
	size_t n;
};

struct sim_server_path {
	struct qs_version_entry cur;
	struct sim_log history;    /* history.v[i] is version i + 1 */
	struct sim_log pending;    /* candidates awaiting the user's choice */
	struct sim_log candidates; /* every candidate ever kept */
};

struct sim_copy {
	bool present;
	bool dirty; /* the stat fingerprint no longer matches the index */
	struct qs_content local;
	struct qs_plan_index index;
	struct qs_version_entry view; /* the newest server entry this replica was told of */
};

struct sim_stats {
	size_t actions[QS_ACTION_ADOPT + 1];
	size_t verdicts[QS_VERDICT_CONFLICT + 1];
	size_t conflicts[QS_CONFLICT_KIND + 1];
	size_t stale_conflicts; /* conflicts found by the server, not foreseen by the planner */
};

struct sim {
	struct sim_rng *rng;
	struct sim_server_path server[SIM_PATHS];
	struct sim_copy rep[SIM_REPLICAS][SIM_PATHS];
	uint32_t next_id;
	struct qs_content observed[SIM_IDS]; /* edits a sync step saw, by id */
	uint8_t observed_path[SIM_IDS];      /* path + 1, or 0 */
	struct sim_stats *stats;
};

static void log_push(struct sim_log *l, const struct qs_content *c)
{
	assert_true(l->n < SIM_LOG);
	l->v[l->n++] = *c;
}

static bool log_has(const struct sim_log *l, const struct qs_content *c)
{
	for (size_t i = 0; i < l->n; i++) {
		if (qs_content_equal(&l->v[i], c))
			return true;
	}
	return false;
}

/* The server holds c for this path: as an accepted version or a conflict candidate. */
static bool server_holds(const struct sim_server_path *sp, const struct qs_content *c)
{
	return !live(c) || log_has(&sp->history, c) || log_has(&sp->candidates, c);
}

static struct qs_content local_of(const struct sim_copy *c)
{
	return c->present ? c->local : tomb;
}

static void user_edit(struct sim *s, struct sim_copy *c, const struct sim_server_path *sp)
{
	uint32_t move = rng_below(s->rng, 6);
	c->dirty = true;
	if (move == 0 || (move == 1 && !c->present)) {
		assert_true(s->next_id < SIM_IDS);
		c->local = mk(QS_KIND_FILE, s->next_id++);
		c->present = true;
	} else if (move == 1) {
		c->present = false;
	} else if (move == 2) {
		c->local = mk(QS_KIND_DIR, 0);
		c->present = true;
	} else if (move == 3) {
		assert_true(s->next_id < SIM_IDS);
		c->local = mk(QS_KIND_SYMLINK, s->next_id++);
		c->present = true;
	} else if (move == 4 || sp->history.n == 0) {
		/* A touch: new fingerprint, same content. */
	} else {
		/* Back to some earlier version of the path (maybe a deletion). */
		c->local = sp->history.v[rng_below(s->rng, (uint32_t)sp->history.n)];
		c->present = live(&c->local);
	}
}

static void notify(struct sim_copy *c, const struct sim_server_path *sp)
{
	int order = 0;
	/* Views only move forward, and one version never has two contents. */
	assert_int_equal(qs_version_compare(&c->view, &sp->cur, &order), 0);
	assert_true(order <= 0);
	c->view = sp->cur;
}

static void propose(struct sim *s, struct sim_copy *c, struct sim_server_path *sp,
		    const struct qs_plan *plan)
{
	struct qs_decision d;
	assert_int_equal(qs_version_decide(&sp->cur, &plan->proposal, &d), 0);
	s->stats->verdicts[d.verdict]++;
	if (d.verdict == QS_VERDICT_FAST_FORWARD) {
		assert_int_equal(d.version, sp->history.n + 1);
		log_push(&sp->history, &plan->proposal.content);
		sp->cur = (struct qs_version_entry){d.version, plan->proposal.content};
	} else if (d.verdict == QS_VERDICT_CONFLICT) {
		s->stats->conflicts[d.conflict]++;
		if (plan->action != QS_ACTION_CONFLICT)
			s->stats->stale_conflicts++;
		log_push(&sp->pending, &plan->proposal.content);
		log_push(&sp->candidates, &plan->proposal.content);
	}
	assert_int_equal(qs_plan_index_answer(&c->index, &plan->proposal, &d), 0);
	notify(c, sp); /* the answer carries the server's entry */
}

/* One planner-driven sync step for one replica and path, done at once. */
static bool sync_step(struct sim *s, struct sim_copy *c, struct sim_server_path *sp, size_t path)
{
	struct qs_content now = local_of(c);
	if (c->present && c->local.kind != QS_KIND_DIR && id_of(&c->local) != 0) {
		s->observed[id_of(&c->local)] = c->local;
		s->observed_path[id_of(&c->local)] = (uint8_t)(path + 1);
	}
	/* An unchanged file is not hashed again: hand the planner garbage for it. */
	struct qs_plan_local l = {c->present, c->dirty,
				  c->dirty ? c->local : mk(QS_KIND_FILE, 0xDEAD)};
	struct qs_plan plan;
	assert_int_equal(qs_plan_path(&l, &c->index, &c->view, &plan), 0);
	s->stats->actions[plan.action]++;
	switch (plan.action) {
	case QS_ACTION_NOTHING:
		/* The local content is what the index refers to: re-take the fingerprint. */
		c->dirty = false;
		return false;
	case QS_ACTION_UPLOAD:
	case QS_ACTION_DELETE_REMOTE:
	case QS_ACTION_CONFLICT: propose(s, c, sp, &plan); break;
	case QS_ACTION_DOWNLOAD:
	case QS_ACTION_DELETE_LOCAL:
		assert_true(server_holds(sp, &now));
		c->local = c->view.content;
		c->present = live(&c->local);
		__attribute__((fallthrough));
	case QS_ACTION_ADOPT:
		now = local_of(c);
		assert_true(qs_content_equal(&c->view.content, &now));
		assert_int_equal(plan.version, c->view.version);
		qs_plan_index_agree(&c->index, &c->view);
		break;
	default: fail();
	}
	c->dirty = false;
	return true;
}

/* The user picks one of the candidates or the current content; it becomes version + 1. */
static void resolve(struct sim *s, struct sim_server_path *sp)
{
	uint32_t pick = rng_below(s->rng, (uint32_t)sp->pending.n + 1);
	struct qs_content chosen = pick == sp->pending.n ? sp->cur.content : sp->pending.v[pick];
	log_push(&sp->history, &chosen);
	sp->cur = (struct qs_version_entry){sp->cur.version + 1, chosen};
	sp->pending.n = 0;
}

static void quiesce(struct sim *s)
{
	for (int round = 0; round < 20; round++) {
		bool busy = false;
		for (size_t r = 0; r < SIM_REPLICAS; r++) {
			for (size_t p = 0; p < SIM_PATHS; p++)
				notify(&s->rep[r][p], &s->server[p]);
		}
		for (size_t r = 0; r < SIM_REPLICAS; r++) {
			for (size_t p = 0; p < SIM_PATHS; p++)
				busy |= sync_step(s, &s->rep[r][p], &s->server[p], p);
		}
		if (!busy)
			return;
	}
	fail_msg("no quiescence after 20 rounds");
}

/* With conflicts pending: each copy equals the server, or keeps its candidate. */
static void check_settled(const struct sim *s, bool allow_pending)
{
	for (size_t p = 0; p < SIM_PATHS; p++) {
		const struct sim_server_path *sp = &s->server[p];
		assert_true(allow_pending || sp->pending.n == 0);
		for (size_t r = 0; r < SIM_REPLICAS; r++) {
			const struct sim_copy *c = &s->rep[r][p];
			struct qs_content now = local_of(c);
			if (c->index.conflicted) {
				assert_true(allow_pending);
				assert_true(qs_content_equal(&now, &c->index.candidate));
				assert_int_equal(c->index.conflict_version, sp->cur.version);
				assert_true(log_has(&sp->pending, &now));
				continue;
			}
			assert_true(qs_content_equal(&now, &sp->cur.content));
			assert_int_equal(c->index.base_version, sp->cur.version);
			assert_true(qs_content_equal(&c->index.base, &sp->cur.content));
			assert_false(c->dirty);
		}
	}
}

static void sim_run(struct sim *s)
{
	for (int step = 0; step < SIM_STEPS; step++) {
		size_t r = rng_below(s->rng, SIM_REPLICAS), p = rng_below(s->rng, SIM_PATHS);
		struct sim_copy *c = &s->rep[r][p];
		struct sim_server_path *sp = &s->server[p];
		uint32_t move = rng_below(s->rng, 100);
		if (move < 30)
			user_edit(s, c, sp);
		else if (move < 75)
			sync_step(s, c, sp, p);
		else if (move < 93)
			notify(c, sp);
		else if (sp->pending.n > 0)
			resolve(s, sp);
	}
	quiesce(s);
	check_settled(s, true);
	for (size_t p = 0; p < SIM_PATHS; p++) {
		if (s->server[p].pending.n > 0)
			resolve(s, &s->server[p]);
	}
	quiesce(s);
	check_settled(s, false);
	/* No edit a sync step saw is lost: the server holds each one. */
	for (uint32_t id = 1; id < s->next_id; id++) {
		if (s->observed_path[id] != 0)
			assert_true(server_holds(&s->server[s->observed_path[id] - 1],
						 &s->observed[id]));
	}
}

static void test_simulation(void **state)
{
	(void)state;
	struct sim *s = malloc(sizeof(*s));
	assert_non_null(s);
	struct sim_stats stats;
	memset(&stats, 0, sizeof(stats));
	for (uint64_t seed = 1; seed <= SIM_SEEDS; seed++) {
		struct sim_rng rng = {seed};
		memset(s, 0, sizeof(*s));
		s->rng = &rng;
		s->stats = &stats;
		s->next_id = 1;
		sim_run(s);
	}
	free(s);
	/* The runs went through every action, verdict and kind of conflict. */
	for (int a = 0; a <= QS_ACTION_ADOPT; a++)
		assert_true(stats.actions[a] > 0);
	for (int v = QS_VERDICT_FAST_FORWARD; v <= QS_VERDICT_CONFLICT; v++)
		assert_true(stats.verdicts[v] > 0);
	for (int k = QS_CONFLICT_MODIFY_MODIFY; k <= QS_CONFLICT_KIND; k++)
		assert_true(stats.conflicts[k] > 0);
	assert_true(stats.stale_conflicts > 0);
	print_message("simulation: %d seeds x %d steps; upload %zu, delete-remote %zu, "
		      "download %zu, delete-local %zu, conflict %zu, adopt %zu; verdicts ff %zu "
		      "same %zu conflict %zu (%zu found only by the server)\n",
		      SIM_SEEDS, SIM_STEPS, stats.actions[QS_ACTION_UPLOAD],
		      stats.actions[QS_ACTION_DELETE_REMOTE], stats.actions[QS_ACTION_DOWNLOAD],
		      stats.actions[QS_ACTION_DELETE_LOCAL], stats.actions[QS_ACTION_CONFLICT],
		      stats.actions[QS_ACTION_ADOPT], stats.verdicts[QS_VERDICT_FAST_FORWARD],
		      stats.verdicts[QS_VERDICT_SAME], stats.verdicts[QS_VERDICT_CONFLICT],
		      stats.stale_conflicts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_is_complete), cmocka_unit_test(test_every_combination),
		cmocka_unit_test(test_named_cases),       cmocka_unit_test(test_invalid_inputs),
		cmocka_unit_test(test_simulation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
