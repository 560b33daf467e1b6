/* Lists a file's chunks as the sync engine cuts them (core/chunker.h, default parameters):
 * one line per chunk, "offset length sha256-hex". The large-file tests use it to know which
 * chunks a small edit changed, so they can bound the bytes a delta transfer may send.
 * Usage: qs_chunks FILE */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "core/chunker.h"
#include "core/sha256.h"

#define CHUNKS_READ_BYTES ((size_t)1024 * 1024)

static int print_chunk(void *arg, uint64_t offset, size_t len_bytes,
		       const uint8_t sha256[QS_SHA256_LEN])
{
	(void)arg;
	printf("%" PRIu64 " %zu ", offset, len_bytes);
	for (size_t i = 0; i < QS_SHA256_LEN; i++)
		printf("%02x", sha256[i]);
	putchar('\n');
	return 0;
}

/* Feeds the whole of fd to c. Errors: QS_EIO, the chunker's. */
static int chunk_fd(int fd, struct qs_chunker *c, uint8_t *buf)
{
	for (;;) {
		ssize_t n = read(fd, buf, CHUNKS_READ_BYTES);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return QS_EIO;
		if (n == 0)
			return qs_chunker_finish(c);
		int rc = qs_chunker_feed(c, buf, (size_t)n);
		if (rc != 0)
			return rc;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: qs_chunks FILE\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "qs_chunks: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	uint8_t *buf = qs_malloc(CHUNKS_READ_BYTES);
	struct qs_chunker c;
	int rc = buf != NULL ? qs_chunker_init(&c, &qs_chunker_default_params, print_chunk, NULL)
			     : QS_ENOMEM;
	if (rc == 0) {
		rc = chunk_fd(fd, &c, buf);
		qs_chunker_release(&c);
	}
	qs_free(buf);
	close(fd);
	if (rc != 0)
		fprintf(stderr, "qs_chunks: %s: %s\n", argv[1], qs_strerror(rc));
	return rc == 0 ? 0 : 1;
}
