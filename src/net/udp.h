/* UDP sockets for QUIC: non-blocking sockets with large buffers, batched receive
 * (recvmmsg), batched send (GSO UDP_SEGMENT where the kernel supports it, else sendmmsg),
 * numeric address parsing/formatting and a path-MTU hint. */
#ifndef QS_NET_UDP_H
#define QS_NET_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define QS_UDP_BATCH 32        /* datagrams per recvmmsg */
#define QS_UDP_RX_SIZE 65536   /* receive buffer per datagram */
#define QS_UDP_MAX_SEGMENTS 64 /* datagrams per GSO send */
#define QS_UDP_GSO_BYTES 65000 /* bytes per GSO send (the kernel's limit is 65507) */

struct qs_udp {
	int fd;
	int family;
	struct sockaddr_storage local;
	socklen_t local_len;
	bool gso; /* UDP_SEGMENT works on this socket */
};

/* One received datagram: data points into the caller's rx buffers. */
struct qs_udp_dgram {
	uint8_t *data;
	size_t len;
	struct sockaddr_storage from;
	socklen_t from_len;
};

struct qs_udp_rx {
	uint8_t *bufs; /* QS_UDP_BATCH * QS_UDP_RX_SIZE bytes */
	struct qs_udp_dgram d[QS_UDP_BATCH];
};

/* Parses a numeric IPv4 or IPv6 address and a port. Errors: QS_EINVAL. */
int qs_addr_parse(const char *host, uint16_t port, struct sockaddr_storage *out,
		  socklen_t *out_len);
/* Writes "a.b.c.d:port" or "[v6]:port" into out (cap >= 64 recommended). */
void qs_addr_format(const struct sockaddr *sa, char *out, size_t cap);
/* The IP address part only, for per-source limits: equal for the same host. */
bool qs_addr_same_host(const struct sockaddr *a, const struct sockaddr *b);

/* Opens a non-blocking UDP socket bound to addr (port 0: any free port). An IPv6 wildcard
 * also accepts IPv4. If connect_to is not NULL the socket is connected (clients).
 * Errors: QS_EINVAL, QS_EACCES, QS_EIO. */
int qs_udp_open(struct qs_udp *u, const struct sockaddr *addr, socklen_t len,
		const struct sockaddr *connect_to, socklen_t connect_len);
void qs_udp_close(struct qs_udp *u);

int qs_udp_rx_init(struct qs_udp_rx *rx);
void qs_udp_rx_release(struct qs_udp_rx *rx);
/* Receives up to QS_UDP_BATCH datagrams into rx; *count is 0 when nothing is pending.
 * Errors: QS_ECONN (a connected socket got ICMP port unreachable: nobody listens),
 * QS_EIO (another socket error). */
int qs_udp_recv(struct qs_udp *u, struct qs_udp_rx *rx, size_t *count);

/* Sends len bytes as datagrams of `segment` bytes each (the last may be shorter) to `to`
 * (NULL for a connected socket). *sent is the number of bytes that left (a multiple of
 * segment unless all). Errors: QS_EAGAIN (socket buffer full; *sent tells how much went),
 * QS_EIO. */
int qs_udp_send(struct qs_udp *u, const struct sockaddr *to, socklen_t to_len, const uint8_t *data,
		size_t len, size_t segment, size_t *sent);

/* Largest UDP payload the kernel believes the path to peer carries without fragmentation
 * (interface or learned path MTU minus headers), or 0 if unknown. */
size_t qs_udp_path_payload(const struct sockaddr *peer, socklen_t len);

#endif
