/* Chunker and SHA-256 throughput on a pseudo-random buffer: chunking alone (boundary scan),
 * SHA-256 alone (core/sha256.h), chunk + hash (the streaming API), and chunk + hash on all
 * cores (one thread per part of the buffer). MB/s are 10^6 bytes per second of wall time.
 * Usage: bench_chunk [MiB] [--write FILE]   (default 1024 MiB; --write saves the buffer so
 * `sha256sum FILE` can be timed on the same data). */
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

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mb_per_s(size_t bytes, double seconds)
{
	return (double)bytes / 1e6 / seconds;
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

static size_t bench_scan(const uint8_t *buf, size_t len, double *mbps)
{
	size_t chunks = 0;
	double t0 = now_s();
	for (size_t off = 0; off < len; chunks++) {
		size_t n;
		if (qs_chunker_scan(&qs_chunker_default_params, buf + off, len - off, &n) != 0)
			abort();
		off += n;
	}
	*mbps = mb_per_s(len, now_s() - t0);
	return chunks;
}

static int bench_sha(const uint8_t *buf, size_t len, double *mbps)
{
	struct qs_sha256 s;
	uint8_t digest[QS_SHA256_LEN];
	if (qs_sha256_init(&s) != 0)
		return QS_ENOMEM;
	double t0 = now_s();
	for (size_t off = 0; off < len; off += BENCH_FEED_BYTES) {
		size_t n = len - off < BENCH_FEED_BYTES ? len - off : BENCH_FEED_BYTES;
		qs_sha256_update(&s, buf + off, n);
	}
	qs_sha256_final(&s, digest);
	*mbps = mb_per_s(len, now_s() - t0);
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

static int bench_parallel(const uint8_t *buf, size_t len, size_t threads, double *mbps)
{
	struct bench_part parts[BENCH_MAX_THREADS];
	size_t started = 0, step = len / threads;
	int rc = 0;
	double t0 = now_s();
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
	*mbps = mb_per_s(len, now_s() - t0);
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

static int parse_args(int argc, char **argv, uint64_t *mib, const char **write_path)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--write") == 0 && i + 1 < argc) {
			*write_path = argv[++i];
		} else if (qs_parse_u64(argv[i], 1u << 20, mib) != 0 || *mib == 0) {
			fprintf(stderr, "usage: bench_chunk [MiB] [--write FILE]\n");
			return QS_EINVAL;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t mib = 1024;
	const char *write_path = NULL;
	if (parse_args(argc, argv, &mib, &write_path) != 0)
		return 2;
	size_t len = (size_t)mib << 20;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t threads = ncpu < 1 ? 1 : ncpu > BENCH_MAX_THREADS ? BENCH_MAX_THREADS : (size_t)ncpu;
	uint8_t *buf = qs_malloc(len);
	if (buf == NULL) {
		fprintf(stderr, "bench_chunk: cannot allocate %zu bytes\n", len);
		return 1;
	}
	fill_random(buf, len);
	int rc = write_path != NULL ? write_file(write_path, buf, len) : 0;
	if (rc != 0) {
		fprintf(stderr, "bench_chunk: write %s: %s\n", write_path, qs_strerror(rc));
		qs_free(buf);
		return 1;
	}
	double scan_mbps = 0, sha_mbps = 0, both_mbps = 0, par_mbps = 0;
	size_t chunks = bench_scan(buf, len, &scan_mbps);
	printf("chunking alone:  %8.0f MB/s  (%zu chunks, avg %.0f KiB)\n", scan_mbps, chunks,
	       (double)len / 1024.0 / (double)chunks);
	rc = bench_sha(buf, len, &sha_mbps);
	printf("sha256 alone:    %8.0f MB/s\n", sha_mbps);
	size_t hashed_chunks = 0;
	double t0 = now_s();
	if (rc == 0)
		rc = chunk_hash(buf, len, &hashed_chunks);
	both_mbps = mb_per_s(len, now_s() - t0);
	printf("chunk + hash:    %8.0f MB/s  (%zu chunks)\n", both_mbps, hashed_chunks);
	if (rc == 0)
		rc = bench_parallel(buf, len, threads, &par_mbps);
	printf("parallel (%zu t): %8.0f MB/s aggregate\n", threads, par_mbps);
	if (write_path != NULL)
		printf("wrote %s: time `sha256sum %s` to compare\n", write_path, write_path);
	printf("summary size_mib=%llu chunk_mbps=%.0f sha256_mbps=%.0f chunk_hash_mbps=%.0f "
	       "parallel_mbps=%.0f threads=%zu chunks=%zu\n",
	       (unsigned long long)mib, scan_mbps, sha_mbps, both_mbps, par_mbps, threads, chunks);
	qs_free(buf);
	if (rc != 0) {
		fprintf(stderr, "bench_chunk: %s\n", qs_strerror(rc));
		return 1;
	}
	return 0;
}
