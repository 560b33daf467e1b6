/* Chunker and SHA-256 throughput on a pseudo-random buffer: chunking alone (boundary scan),
 * SHA-256 alone (core/sha256.h), chunk + hash (the streaming API, 1 MiB feeds), and chunk +
 * hash on all cores (one thread per part of the buffer, aggregate MB/s). MB/s are 10^6
 * bytes per second. Single-thread figures are given per wall second and per CPU second of
 * the thread (the machine is shared, so the wall figure undercounts when cores are busy);
 * each figure is the best of --runs runs.
 * Usage: bench_chunk [MiB] [--runs N] [--write FILE]   (default 1024 MiB, 3 runs; --write
 * saves the buffer so `sha256sum FILE` can be timed on the same data). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "core/chunker.h"
#include "core/sha256.h"

#define BENCH_FEED_BYTES ((size_t)1024 * 1024)
#define BENCH_MAX_THREADS 64

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* MB/s of one measurement, per wall second and per CPU second of the calling thread. */
struct rate {
	double wall, cpu;
};

struct timer {
	double wall0, cpu0;
};

static void timer_start(struct timer *t)
{
	t->wall0 = clock_s(CLOCK_MONOTONIC);
	t->cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static struct rate timer_rate(const struct timer *t, size_t bytes)
{
	double wall = clock_s(CLOCK_MONOTONIC) - t->wall0;
	double cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - t->cpu0;
	return (struct rate){(double)bytes / 1e6 / wall, (double)bytes / 1e6 / cpu};
}

/* Fills buf with xorshift64* output: incompressible, reproducible. */
static void fill_random(uint8_t *buf, size_t len)
{
	uint64_t x = 0x9e3779b97f4a7c15u;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t v = x * 0x2545f4914f6cdd1du;
		memcpy(buf + i, &v, 8);
	}
	for (; i < len; i++)
		buf[i] = (uint8_t)(i * 131);
}

static size_t bench_scan(const uint8_t *buf, size_t len, struct rate *r)
{
	size_t chunks = 0;
	struct timer t;
	timer_start(&t);
	for (size_t off = 0; off < len; chunks++) {
		size_t n;
		if (qs_chunker_scan(&qs_chunker_default_params, buf + off, len - off, &n) != 0)
			abort();
		off += n;
	}
	*r = timer_rate(&t, len);
	return chunks;
}

static int bench_sha(const uint8_t *buf, size_t len, struct rate *r)
{
	struct qs_sha256 s;
	uint8_t digest[QS_SHA256_LEN];
	struct timer t;
	timer_start(&t);
	if (qs_sha256_init(&s) != 0)
		return QS_ENOMEM;
	for (size_t off = 0; off < len; off += BENCH_FEED_BYTES) {
		size_t n = len - off < BENCH_FEED_BYTES ? len - off : BENCH_FEED_BYTES;
		qs_sha256_update(&s, buf + off, n);
	}
	qs_sha256_final(&s, digest);
	*r = timer_rate(&t, len);
	return 0;
}

static int count_chunk(void *arg, uint64_t offset, size_t len_bytes,
		       const uint8_t sha256[QS_SHA256_LEN])
{
	(void)offset;
	(void)len_bytes;
	(void)sha256;
	(*(size_t *)arg)++;
	return 0;
}

/* Chunks and hashes buf through the streaming API in 1 MiB feeds; counts chunks. */
static int chunk_hash(const uint8_t *buf, size_t len, size_t *chunks)
{
	struct qs_chunker c;
	int rc = qs_chunker_init(&c, &qs_chunker_default_params, count_chunk, chunks);
	if (rc != 0)
		return rc;
	for (size_t off = 0; off < len && rc == 0; off += BENCH_FEED_BYTES) {
		size_t n = len - off < BENCH_FEED_BYTES ? len - off : BENCH_FEED_BYTES;
		rc = qs_chunker_feed(&c, buf + off, n);
	}
	if (rc == 0)
		rc = qs_chunker_finish(&c);
	qs_chunker_release(&c);
	return rc;
}

static int bench_chunk_hash(const uint8_t *buf, size_t len, size_t *chunks, struct rate *r)
{
	struct timer t;
	timer_start(&t);
	*chunks = 0;
	int rc = chunk_hash(buf, len, chunks);
	*r = timer_rate(&t, len);
	return rc;
}

struct bench_part {
	pthread_t thread;
	const uint8_t *buf;
	size_t len;
	size_t chunks;
	int rc;
};

static void *part_main(void *arg)
{
	struct bench_part *p = arg;
	p->rc = chunk_hash(p->buf, p->len, &p->chunks);
	return NULL;
}

/* Aggregate wall-clock MB/s of `threads` threads each chunking and hashing 1/threads of
 * the buffer. */
static int bench_parallel(const uint8_t *buf, size_t len, size_t threads, double *mbps)
{
	struct bench_part parts[BENCH_MAX_THREADS];
	size_t started = 0, step = len / threads;
	int rc = 0;
	double t0 = clock_s(CLOCK_MONOTONIC);
	for (size_t i = 0; i < threads; i++) {
		parts[i] = (struct bench_part){.buf = buf + i * step,
					       .len = i + 1 == threads ? len - i * step : step};
		if (pthread_create(&parts[i].thread, NULL, part_main, &parts[i]) != 0) {
			rc = QS_ENOMEM;
			break;
		}
		started++;
	}
	for (size_t i = 0; i < started; i++) {
		pthread_join(parts[i].thread, NULL);
		if (parts[i].rc != 0)
			rc = parts[i].rc;
	}
	*mbps = (double)len / 1e6 / (clock_s(CLOCK_MONOTONIC) - t0);
	return rc;
}

static int write_file(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return qs_err_from_errno(errno);
	size_t n = fwrite(buf, 1, len, f);
	int rc = n == len ? 0 : QS_EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = QS_EIO;
	return rc;
}

struct bench_args {
	uint64_t mib;
	uint64_t runs;
	const char *write_path;
};

static int parse_args(int argc, char **argv, struct bench_args *a)
{
	int rc = 0;
	for (int i = 1; i < argc && rc == 0; i++) {
		if (strcmp(argv[i], "--write") == 0 && i + 1 < argc)
			a->write_path = argv[++i];
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			rc = qs_parse_u64(argv[++i], 100, &a->runs);
		else
			rc = qs_parse_u64(argv[i], 1u << 20, &a->mib);
	}
	if (rc != 0 || a->mib == 0 || a->runs == 0) {
		fprintf(stderr, "usage: bench_chunk [MiB] [--runs N] [--write FILE]\n");
		return QS_EINVAL;
	}
	return 0;
}

struct bench_result {
	struct rate scan, sha, both;
	double par_mbps;
	size_t chunks, hashed_chunks;
};

static void keep_best(struct rate *best, struct rate r)
{
	if (r.wall > best->wall)
		best->wall = r.wall;
	if (r.cpu > best->cpu)
		best->cpu = r.cpu;
}

/* One run of every measurement; keeps the best figure of each across runs. */
static int bench_run(const uint8_t *buf, size_t len, size_t threads, struct bench_result *best)
{
	struct rate scan, sha = {0, 0}, both = {0, 0};
	double par = 0;
	best->chunks = bench_scan(buf, len, &scan);
	int rc = bench_sha(buf, len, &sha);
	if (rc == 0)
		rc = bench_chunk_hash(buf, len, &best->hashed_chunks, &both);
	if (rc == 0)
		rc = bench_parallel(buf, len, threads, &par);
	keep_best(&best->scan, scan);
	keep_best(&best->sha, sha);
	keep_best(&best->both, both);
	if (par > best->par_mbps)
		best->par_mbps = par;
	return rc;
}

static void print_result(const struct bench_args *a, size_t len, size_t threads,
			 const struct bench_result *r)
{
	printf("chunking alone:    %6.0f MB/s wall, %6.0f MB/s cpu  (%zu chunks, avg %.0f KiB)\n",
	       r->scan.wall, r->scan.cpu, r->chunks, (double)len / 1024.0 / (double)r->chunks);
	printf("sha256 alone:      %6.0f MB/s wall, %6.0f MB/s cpu\n", r->sha.wall, r->sha.cpu);
	printf("chunk + hash:      %6.0f MB/s wall, %6.0f MB/s cpu  (%zu chunks)\n", r->both.wall,
	       r->both.cpu, r->hashed_chunks);
	printf("parallel %zu threads: %5.0f MB/s aggregate wall\n", threads, r->par_mbps);
	if (a->write_path != NULL)
		printf("wrote %s: time `sha256sum %s` to compare\n", a->write_path, a->write_path);
	printf("summary size_mib=%llu runs=%llu chunk_mbps=%.0f/%.0f sha256_mbps=%.0f/%.0f "
	       "chunk_hash_mbps=%.0f/%.0f parallel_mbps=%.0f threads=%zu chunks=%zu (wall/cpu)\n",
	       (unsigned long long)a->mib, (unsigned long long)a->runs, r->scan.wall, r->scan.cpu,
	       r->sha.wall, r->sha.cpu, r->both.wall, r->both.cpu, r->par_mbps, threads, r->chunks);
}

int main(int argc, char **argv)
{
	struct bench_args a = {.mib = 1024, .runs = 3, .write_path = NULL};
	if (parse_args(argc, argv, &a) != 0)
		return 2;
	size_t len = (size_t)a.mib << 20;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t threads = ncpu < 1 ? 1 : ncpu > BENCH_MAX_THREADS ? BENCH_MAX_THREADS : (size_t)ncpu;
	uint8_t *buf = qs_malloc(len);
	if (buf == NULL) {
		fprintf(stderr, "bench_chunk: cannot allocate %zu bytes\n", len);
		return 1;
	}
	fill_random(buf, len);
	int rc = a.write_path != NULL ? write_file(a.write_path, buf, len) : 0;
	if (rc != 0)
		fprintf(stderr, "bench_chunk: write %s: %s\n", a.write_path, qs_strerror(rc));
	struct bench_result r = {0};
	for (uint64_t i = 0; i < a.runs && rc == 0; i++)
		rc = bench_run(buf, len, threads, &r);
	if (rc == 0)
		print_result(&a, len, threads, &r);
	else
		fprintf(stderr, "bench_chunk: %s\n", qs_strerror(rc));
	qs_free(buf);
	return rc == 0 ? 0 : 1;
}
