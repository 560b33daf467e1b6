/* Unit tests of qs-impair's engine and command line: the engine runs on an injected clock
 * with a recording emit callback, so timing (delay, jitter, rate, reorder deadlines) is
 * checked to the nanosecond without sockets or sleeps. */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "impair.h"

#define MS UINT64_C(1000000)
#define REC_MAX 4096
#define DATA_MAX 64

struct rec {
	enum qs_impair_dir dir;
	uint32_t session_idx;
	uint64_t session_gen;
	size_t len;
	unsigned char data[DATA_MAX];
	size_t during_input; /* the input being processed when it was emitted */
};

/* Records what the engine emits; `result` is what the callback reports back. */
struct sink {
	struct rec recs[REC_MAX];
	size_t count;
	size_t input_no;
	enum qs_impair_sent result;
};

static enum qs_impair_sent record(void *arg, enum qs_impair_dir dir, uint32_t session_idx,
				  uint64_t session_gen, const unsigned char *data, size_t len)
{
	struct sink *s = arg;
	assert_true(s->count < REC_MAX);
	assert_true(len <= DATA_MAX);
	struct rec *r = &s->recs[s->count++];
	r->dir = dir;
	r->session_idx = session_idx;
	r->session_gen = session_gen;
	r->len = len;
	if (len > 0)
		memcpy(r->data, data, len);
	r->during_input = s->input_no;
	return s->result;
}

static void set_both(struct qs_impair_config *cfg, enum qs_impair_opt o, uint64_t v)
{
	cfg->dir[QS_IMPAIR_C2S][o] = v;
	cfg->dir[QS_IMPAIR_S2C][o] = v;
}

static struct sink *sink_new(void)
{
	struct sink *s = qs_calloc(1, sizeof(*s));
	assert_non_null(s);
	s->result = QS_IMPAIR_SENT;
	return s;
}

/* Feeds datagram number n (8 bytes: n, then 0xA5 filler) in dir at now. */
static void feed(struct qs_impair_engine *e, struct sink *s, enum qs_impair_dir dir, uint32_t n,
		 uint64_t now)
{
	unsigned char d[8] = {(unsigned char)(n >> 24),
			      (unsigned char)(n >> 16),
			      (unsigned char)(n >> 8),
			      (unsigned char)n,
			      0xA5,
			      0xA5,
			      0xA5,
			      0xA5};
	s->input_no = n;
	qs_impair_input(e, dir, 3, 7, d, sizeof(d), now);
}

static uint32_t rec_no(const struct rec *r)
{
	return (uint32_t)r->data[0] << 24 | (uint32_t)r->data[1] << 16 | (uint32_t)r->data[2] << 8 |
	       r->data[3];
}

static void test_no_impairment_is_immediate_and_in_order(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	for (uint32_t i = 0; i < 100; i++) {
		feed(&e, s, i % 2 ? QS_IMPAIR_S2C : QS_IMPAIR_C2S, i, 0);
		assert_int_equal(s->count, i + 1); /* sent inside qs_impair_input */
	}
	for (uint32_t i = 0; i < 100; i++) {
		assert_int_equal(rec_no(&s->recs[i]), i);
		assert_int_equal(s->recs[i].dir, i % 2 ? QS_IMPAIR_S2C : QS_IMPAIR_C2S);
		assert_int_equal(s->recs[i].session_idx, 3);
		assert_int_equal(s->recs[i].session_gen, 7);
		assert_int_equal(s->recs[i].data[7], 0xA5);
	}
	assert_int_equal(e.dirs[QS_IMPAIR_C2S].stats[QS_IMPAIR_FORWARDED], 50);
	assert_int_equal(qs_impair_next_ns(&e), UINT64_MAX);
	qs_impair_engine_release(&e);
	qs_free(s);
}

static void test_drop_all_and_fraction(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	cfg.dir[QS_IMPAIR_C2S][QS_IMPAIR_DROP] = QS_IMPAIR_PPB;      /* 1 */
	cfg.dir[QS_IMPAIR_S2C][QS_IMPAIR_DROP] = QS_IMPAIR_PPB / 10; /* 0.1 */
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	for (uint32_t i = 0; i < 1000; i++)
		feed(&e, s, QS_IMPAIR_C2S, i, 0);
	assert_int_equal(s->count, 0);
	assert_int_equal(e.dirs[QS_IMPAIR_C2S].stats[QS_IMPAIR_DROPPED], 1000);
	for (uint32_t i = 0; i < 20000; i++) {
		s->count = 0;
		feed(&e, s, QS_IMPAIR_S2C, i, 0);
	}
	uint64_t dropped = e.dirs[QS_IMPAIR_S2C].stats[QS_IMPAIR_DROPPED];
	assert_in_range(dropped, 2000 - 200, 2000 + 200);
	assert_int_equal(e.dirs[QS_IMPAIR_S2C].stats[QS_IMPAIR_FORWARDED], 20000 - dropped);
	qs_impair_engine_release(&e);
	qs_free(s);
}

/* Runs 2000 datagrams in dir (and, if noisy, as many in the other direction between them)
 * at drop 0.5 and returns a fingerprint of which of those in dir survived. */
static uint64_t survivors_in(enum qs_impair_dir dir, uint64_t seed, bool is_noisy)
{
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	cfg.seed = seed;
	set_both(&cfg, QS_IMPAIR_DROP, QS_IMPAIR_PPB / 2);
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	uint64_t h = 1469598103934665603u;
	for (uint32_t i = 0; i < 2000; i++) {
		if (is_noisy)
			feed(&e, s, dir == QS_IMPAIR_C2S ? QS_IMPAIR_S2C : QS_IMPAIR_C2S, i, 0);
		s->count = 0;
		feed(&e, s, dir, i, 0);
		h = (h ^ s->count) * 1099511628211u;
	}
	qs_impair_engine_release(&e);
	qs_free(s);
	return h;
}

static uint64_t survivors(uint64_t seed, bool is_noisy)
{
	return survivors_in(QS_IMPAIR_S2C, seed, is_noisy);
}

static void test_seed_is_deterministic_and_directions_independent(void **state)
{
	(void)state;
	assert_true(survivors(7, false) == survivors(7, false));
	assert_true(survivors(7, false) != survivors(8, false));
	/* c2s traffic draws from its own stream: the s2c choices stay the same. */
	assert_true(survivors(7, false) == survivors(7, true));
	/* ... and a different one: the two directions do not drop the same datagrams. */
	assert_true(survivors_in(QS_IMPAIR_C2S, 7, false) != survivors(7, false));
}

static void test_corrupt_flips_bits_in_one_byte(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	set_both(&cfg, QS_IMPAIR_CORRUPT, QS_IMPAIR_PPB);
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	size_t positions[8] = {0};
	for (uint32_t i = 0; i < 800; i++) {
		feed(&e, s, QS_IMPAIR_C2S, i, 0);
		const struct rec *r = &s->recs[s->count - 1];
		unsigned char want[8] = {(unsigned char)(i >> 24),
					 (unsigned char)(i >> 16),
					 (unsigned char)(i >> 8),
					 (unsigned char)i,
					 0xA5,
					 0xA5,
					 0xA5,
					 0xA5};
		size_t changed = 0;
		assert_int_equal(r->len, 8);
		for (size_t b = 0; b < 8; b++) {
			if (r->data[b] != want[b]) {
				changed++;
				positions[b]++;
			}
		}
		assert_int_equal(changed, 1);
		s->count = 0;
	}
	for (size_t b = 0; b < 8; b++)
		assert_true(positions[b] > 50); /* every byte gets hit: the position is random */
	assert_int_equal(e.dirs[QS_IMPAIR_C2S].stats[QS_IMPAIR_CORRUPTED], 800);
	/* An empty datagram has nothing to corrupt and passes unchanged. */
	qs_impair_input(&e, QS_IMPAIR_S2C, 0, 1, NULL, 0, 0);
	assert_int_equal(s->count, 1);
	assert_int_equal(s->recs[0].len, 0);
	assert_int_equal(e.dirs[QS_IMPAIR_S2C].stats[QS_IMPAIR_CORRUPTED], 0);
	qs_impair_engine_release(&e);
	qs_free(s);
}

static void test_dup_sends_two_identical_copies(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	set_both(&cfg, QS_IMPAIR_DUP, QS_IMPAIR_PPB);
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	for (uint32_t i = 0; i < 10; i++)
		feed(&e, s, QS_IMPAIR_C2S, i, 0);
	assert_int_equal(s->count, 20);
	for (uint32_t i = 0; i < 10; i++) {
		assert_int_equal(rec_no(&s->recs[2 * i]), i);
		assert_memory_equal(s->recs[2 * i].data, s->recs[2 * i + 1].data, 8);
	}
	assert_int_equal(e.dirs[QS_IMPAIR_C2S].stats[QS_IMPAIR_DUPLICATED], 10);
	assert_int_equal(e.dirs[QS_IMPAIR_C2S].stats[QS_IMPAIR_FORWARDED], 20);
	qs_impair_engine_release(&e);
	qs_free(s);
}

static void test_delay_holds_until_due_and_keeps_order(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	set_both(&cfg, QS_IMPAIR_DELAY_MS, 10);
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	for (uint32_t i = 0; i < 50; i++)
		feed(&e, s, QS_IMPAIR_C2S, i, 1000); /* one instant: equal due times */
	feed(&e, s, QS_IMPAIR_S2C, 50, 2 * MS);
	assert_int_equal(s->count, 0);
	assert_int_equal(qs_impair_next_ns(&e), 1000 + 10 * MS);
	assert_int_equal(qs_impair_pending(&e, QS_IMPAIR_C2S), 50);
	qs_impair_tick(&e, 1000 + 10 * MS - 1);
	assert_int_equal(s->count, 0);
	qs_impair_tick(&e, 1000 + 10 * MS);
	assert_int_equal(s->count, 50);
	for (uint32_t i = 0; i < 50; i++)
		assert_int_equal(rec_no(&s->recs[i]), i); /* ties go in arrival order */
	assert_int_equal(qs_impair_next_ns(&e), 12 * MS);
	qs_impair_tick(&e, 12 * MS);
	assert_int_equal(s->count, 51);
	assert_int_equal(qs_impair_pending(&e, QS_IMPAIR_C2S), 0);
	qs_impair_engine_release(&e);
	qs_free(s);
}

static void test_jitter_spreads_within_bounds(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	set_both(&cfg, QS_IMPAIR_DELAY_MS, 10);
	set_both(&cfg, QS_IMPAIR_JITTER_MS, 5);
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	uint64_t lo = UINT64_MAX, hi = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		feed(&e, s, QS_IMPAIR_C2S, i, 0);
		uint64_t due = qs_impair_next_ns(&e);
		lo = due < lo ? due : lo;
		hi = due > hi ? due : hi;
		qs_impair_tick(&e, due);
		assert_int_equal(s->count, i + 1);
	}
	assert_true(lo >= 5 * MS && hi <= 15 * MS);
	assert_true(lo < 6 * MS && hi > 14 * MS);
	/* Jitter larger than the delay never makes a negative delay. */
	struct qs_impair_engine e2;
	set_both(&cfg, QS_IMPAIR_DELAY_MS, 1);
	set_both(&cfg, QS_IMPAIR_JITTER_MS, 50);
	assert_int_equal(qs_impair_engine_init(&e2, &cfg, record, s), 0);
	for (uint32_t i = 0; i < 200; i++) {
		feed(&e2, s, QS_IMPAIR_C2S, i, 100 * MS);
		assert_true(qs_impair_next_ns(&e2) >= 100 * MS);
		qs_impair_tick(&e2, UINT64_MAX);
	}
	qs_impair_engine_release(&e2);
	qs_impair_engine_release(&e);
	qs_free(s);
}

static void test_rate_cap_serializes(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	cfg.dir[QS_IMPAIR_C2S][QS_IMPAIR_RATE_KBIT] = 64; /* 8 bytes take 1 ms */
	cfg.dir[QS_IMPAIR_C2S][QS_IMPAIR_DELAY_MS] = 2;
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	for (uint32_t i = 0; i < 5; i++)
		feed(&e, s, QS_IMPAIR_C2S, i, 0);
	for (uint32_t i = 0; i < 5; i++) {
		/* The i-th leaves the link at (i+1) ms and arrives 2 ms later. */
		assert_int_equal(qs_impair_next_ns(&e), (i + 1) * MS + 2 * MS);
		qs_impair_tick(&e, (i + 1) * MS + 2 * MS);
		assert_int_equal(s->count, i + 1);
	}
	/* An idle link starts again from now, not from its old backlog. */
	feed(&e, s, QS_IMPAIR_C2S, 5, 100 * MS);
	assert_int_equal(qs_impair_next_ns(&e), 103 * MS);
	/* The other direction is uncapped and immediate. */
	feed(&e, s, QS_IMPAIR_S2C, 6, 100 * MS);
	assert_int_equal(s->count, 6);
	qs_impair_engine_release(&e);
	qs_free(s);
}

static void test_reorder_releases_after_gap(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	cfg.seed = 4;
	set_both(&cfg, QS_IMPAIR_REORDER, QS_IMPAIR_PPB / 5);
	set_both(&cfg, QS_IMPAIR_REORDER_GAP, 3);
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	size_t n = 2000;
	for (uint32_t i = 0; i < n; i++)
		feed(&e, s, QS_IMPAIR_C2S, i, 0);
	uint64_t held = e.dirs[QS_IMPAIR_C2S].stats[QS_IMPAIR_REORDERED];
	assert_in_range(held, 400 - 60, 400 + 60);
	size_t late = 0;
	for (size_t k = 0; k < s->count; k++) {
		const struct rec *r = &s->recs[k];
		uint32_t no = rec_no(r);
		if (r->during_input == no)
			continue; /* sent when it came */
		/* A held datagram goes out while the third datagram after it comes in. */
		assert_int_equal(r->during_input, no + 3);
		late++;
	}
	/* The ones held at the very end wait for their deadline. */
	size_t pending = qs_impair_pending(&e, QS_IMPAIR_C2S);
	assert_int_equal(late + pending, held);
	assert_true(pending <= 3);
	qs_impair_tick(&e, 50 * MS - 1);
	assert_int_equal(qs_impair_pending(&e, QS_IMPAIR_C2S), pending);
	qs_impair_tick(&e, 50 * MS);
	assert_int_equal(qs_impair_pending(&e, QS_IMPAIR_C2S), 0);
	assert_int_equal(s->count, n);
	qs_impair_engine_release(&e);
	qs_free(s);
}

static void test_reorder_deadline(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	set_both(&cfg, QS_IMPAIR_REORDER, QS_IMPAIR_PPB);
	set_both(&cfg, QS_IMPAIR_REORDER_GAP, 1000);
	set_both(&cfg, QS_IMPAIR_REORDER_MS, 20);
	set_both(&cfg, QS_IMPAIR_DELAY_MS, 5);
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	feed(&e, s, QS_IMPAIR_C2S, 0, 0);
	assert_int_equal(qs_impair_next_ns(&e), 20 * MS);
	qs_impair_tick(&e, 20 * MS - 1);
	qs_impair_tick(&e, 20 * MS);
	assert_int_equal(s->count, 0); /* released into the 5 ms delay */
	assert_int_equal(qs_impair_next_ns(&e), 25 * MS);
	qs_impair_tick(&e, 25 * MS);
	assert_int_equal(s->count, 1);
	/* The hold list is bounded: past it, datagrams are sent without being held. */
	for (uint32_t i = 0; i < QS_IMPAIR_HOLD_MAX + 10; i++)
		feed(&e, s, QS_IMPAIR_S2C, i, 30 * MS);
	assert_int_equal(e.dirs[QS_IMPAIR_S2C].stats[QS_IMPAIR_REORDERED], QS_IMPAIR_HOLD_MAX);
	assert_int_equal(qs_impair_pending(&e, QS_IMPAIR_S2C), QS_IMPAIR_HOLD_MAX + 10);
	qs_impair_engine_release(&e); /* frees held and queued datagrams (ASan checks) */
	qs_free(s);
}

static void test_queue_bound_and_send_results(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	qs_impair_config_defaults(&cfg);
	cfg.queue_max = 3;
	set_both(&cfg, QS_IMPAIR_DELAY_MS, 1);
	struct sink *s = sink_new();
	struct qs_impair_engine e;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, s), 0);
	for (uint32_t i = 0; i < 5; i++)
		feed(&e, s, QS_IMPAIR_C2S, i, 0);
	assert_int_equal(e.dirs[QS_IMPAIR_C2S].stats[QS_IMPAIR_OVERFLOW], 2);
	s->result = QS_IMPAIR_SESSION_GONE;
	qs_impair_tick(&e, MS);
	assert_int_equal(s->count, 3);
	assert_int_equal(rec_no(&s->recs[2]), 2);
	assert_int_equal(e.dirs[QS_IMPAIR_C2S].stats[QS_IMPAIR_STALE], 3);
	assert_int_equal(e.dirs[QS_IMPAIR_C2S].stats[QS_IMPAIR_FORWARDED], 0);
	s->result = QS_IMPAIR_SEND_FAILED;
	feed(&e, s, QS_IMPAIR_C2S, 9, 2 * MS);
	qs_impair_tick(&e, 3 * MS);
	assert_int_equal(e.dirs[QS_IMPAIR_C2S].stats[QS_IMPAIR_SEND_ERRORS], 1);
	qs_impair_engine_release(&e);
	qs_free(s);
	qs_impair_config_defaults(&cfg);
	cfg.queue_max = 0;
	assert_int_equal(qs_impair_engine_init(&e, &cfg, record, NULL), QS_EINVAL);
}

static void test_parse_probability(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int rc;
		uint64_t ppb;
	} cases[] = {
		{"0", 0, 0},
		{"1", 0, QS_IMPAIR_PPB},
		{"0.5", 0, 500000000},
		{"0.05", 0, 50000000},
		{"00.25", 0, 250000000},
		{"0.000000001", 0, 1},
		{"0.999999999", 0, 999999999},
		{"1.000000000", 0, QS_IMPAIR_PPB},
		{"1.000000001", QS_E2BIG, 0},
		{"1.5", QS_E2BIG, 0},
		{"2", QS_E2BIG, 0},
		{"10", QS_E2BIG, 0},
		{"", QS_EINVAL, 0},
		{".", QS_EINVAL, 0},
		{".5", QS_EINVAL, 0},
		{"0.", QS_EINVAL, 0},
		{"-0.1", QS_EINVAL, 0},
		{"+0.1", QS_EINVAL, 0},
		{" 0.1", QS_EINVAL, 0},
		{"0.1 ", QS_EINVAL, 0},
		{"1e-3", QS_EINVAL, 0},
		{"0x1", QS_EINVAL, 0},
		{"abc", QS_EINVAL, 0},
		{"0..1", QS_EINVAL, 0},
		{"0.5.1", QS_EINVAL, 0},
		{"0.1234567891", QS_EINVAL, 0},
		{"nan", QS_EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ppb = 12345;
		int rc = qs_impair_parse_probability(cases[i].text, &ppb);
		if (rc != cases[i].rc)
			fail_msg("\"%s\": rc %d, expected %d", cases[i].text, rc, cases[i].rc);
		assert_int_equal(ppb, rc == 0 ? cases[i].ppb : 12345); /* untouched on error */
	}
}

static void test_parse_hostport(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	assert_int_equal(qs_impair_parse_hostport("--x", "127.0.0.1:6122", 1, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(qs_impair_parse_hostport("--x", "[::1]:0", 0, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	static const char *const bad[] = {"127.0.0.1:0", "127.0.0.1",       "127.0.0.1:", ":80",
					  "[::1]",       "[::1:80",         "::1:80",     "[]:80",
					  "1.2.3:80",    "127.0.0.1:65536", "nonsense",   "",
					  "[1.2.3.4]:5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (qs_impair_parse_hostport("--x", bad[i], 1, &ss, &len) != QS_EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
}

static int parse(struct qs_impair_config *cfg, int argc, const char *const *args)
{
	char *argv[16];
	assert_true(argc < 16);
	for (int i = 0; i < argc; i++)
		argv[i] = (char *)args[i];
	argv[argc] = NULL;
	return qs_impair_parse_args(argc, argv, cfg);
}

static void test_parse_args(void **state)
{
	(void)state;
	struct qs_impair_config cfg;
	const char *const ok[] = {"qs-impair", "--upstream", "127.0.0.1:6122", "--drop=0.1",
				  "--dup-s2c", "0.25",       "--delay-ms-c2s", "7",
				  "--seed",    "42",         "--reorder-gap",  "2"};
	assert_int_equal(parse(&cfg, 12, ok), 0);
	assert_int_equal(cfg.seed, 42);
	assert_int_equal(cfg.dir[QS_IMPAIR_C2S][QS_IMPAIR_DROP], 100000000);
	assert_int_equal(cfg.dir[QS_IMPAIR_S2C][QS_IMPAIR_DROP], 100000000);
	assert_int_equal(cfg.dir[QS_IMPAIR_C2S][QS_IMPAIR_DUP], 0);
	assert_int_equal(cfg.dir[QS_IMPAIR_S2C][QS_IMPAIR_DUP], 250000000);
	assert_int_equal(cfg.dir[QS_IMPAIR_C2S][QS_IMPAIR_DELAY_MS], 7);
	assert_int_equal(cfg.dir[QS_IMPAIR_S2C][QS_IMPAIR_DELAY_MS], 0);
	assert_int_equal(cfg.dir[QS_IMPAIR_S2C][QS_IMPAIR_REORDER_GAP], 2);
	assert_int_equal(cfg.dir[QS_IMPAIR_S2C][QS_IMPAIR_REORDER_MS], 50); /* default */
	assert_int_equal(cfg.queue_max, 4096);
	assert_int_equal(cfg.listen_addr.ss_family, AF_INET);
	const char *const no_upstream[] = {"qs-impair", "--drop", "0.1"};
	assert_int_equal(parse(&cfg, 3, no_upstream), QS_EINVAL);
	const char *const bad_dir[] = {"qs-impair", "--upstream", "127.0.0.1:1", "--drop-up", "0"};
	assert_int_equal(parse(&cfg, 5, bad_dir), QS_EINVAL);
	const char *const no_value[] = {"qs-impair", "--upstream", "127.0.0.1:1", "--seed"};
	assert_int_equal(parse(&cfg, 4, no_value), QS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_impairment_is_immediate_and_in_order),
		cmocka_unit_test(test_drop_all_and_fraction),
		cmocka_unit_test(test_seed_is_deterministic_and_directions_independent),
		cmocka_unit_test(test_corrupt_flips_bits_in_one_byte),
		cmocka_unit_test(test_dup_sends_two_identical_copies),
		cmocka_unit_test(test_delay_holds_until_due_and_keeps_order),
		cmocka_unit_test(test_jitter_spreads_within_bounds),
		cmocka_unit_test(test_rate_cap_serializes),
		cmocka_unit_test(test_reorder_releases_after_gap),
		cmocka_unit_test(test_reorder_deadline),
		cmocka_unit_test(test_queue_bound_and_send_results),
		cmocka_unit_test(test_parse_probability),
		cmocka_unit_test(test_parse_hostport),
		cmocka_unit_test(test_parse_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
