/* UDP socket adapter. Send batching: one sendmsg with UDP_SEGMENT hands the kernel up to
 * 64 equal-sized datagrams; if the kernel refuses GSO once, the socket falls back to
 * sendmmsg for good. */
#include "net/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

int qs_addr_parse(const char *host, uint16_t port, struct sockaddr_storage *out, socklen_t *out_len)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	const char *h = host;
	char buf[64];
	size_t hl = strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, hl - 2);
		buf[hl - 2] = '\0';
		h = buf;
	}
	if (inet_pton(AF_INET, h, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*out_len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*out_len = sizeof(*in6);
	} else {
		return QS_EINVAL;
	}
	*out = ss;
	return 0;
}

void qs_addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
		port = ntohs(in4->sin_port);
		snprintf(out, cap, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, cap, "[%s]:%u", host, port);
	} else {
		snprintf(out, cap, "?");
	}
}

/* Maps v4-mapped IPv6 addresses to their IPv4 bytes so both spellings compare equal. */
static size_t host_bytes(const struct sockaddr *sa, const uint8_t **p)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (sa->sa_family == AF_INET) {
		*p = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			*p = a + 12;
			return 4;
		}
		*p = a;
		return 16;
	}
	*p = NULL;
	return 0;
}

bool qs_addr_same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	const uint8_t *pa, *pb;
	size_t la = host_bytes(a, &pa), lb = host_bytes(b, &pb);
	return la != 0 && la == lb && memcmp(pa, pb, la) == 0;
}

static void set_buffers(int fd)
{
	int size = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

int qs_udp_open(struct qs_udp *u, const struct sockaddr *addr, socklen_t len,
		const struct sockaddr *connect_to, socklen_t connect_len)
{
	memset(u, 0, sizeof(*u));
	u->fd = -1;
	int fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
		return qs_err_from_errno(errno);
	int rc = 0;
	if (addr->sa_family == AF_INET6) {
		int off = 0;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	}
	set_buffers(fd);
	/* Never fragment: datagrams larger than the path are an error we see, not a silent
	 * fragmentation; ngtcp2's PMTUD relies on this. */
	int pmtu = IP_PMTUDISC_PROBE;
	if (addr->sa_family == AF_INET)
		setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
	else
		setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu));
	if (bind(fd, addr, len) != 0) {
		rc = qs_err_from_errno(errno);
		goto out;
	}
	if (connect_to != NULL && connect(fd, connect_to, connect_len) != 0) {
		rc = qs_err_from_errno(errno);
		goto out;
	}
	u->local_len = sizeof(u->local);
	if (getsockname(fd, (struct sockaddr *)&u->local, &u->local_len) != 0) {
		rc = qs_err_from_errno(errno);
		goto out;
	}
	int seg = 1200;
	u->gso = setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg)) == 0;
	seg = 0;
	if (u->gso)
		setsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg));
	u->fd = fd;
	u->family = addr->sa_family;
out:
	if (rc != 0)
		close(fd);
	return rc;
}

void qs_udp_close(struct qs_udp *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}

int qs_udp_rx_init(struct qs_udp_rx *rx)
{
	rx->bufs = qs_malloc((size_t)QS_UDP_BATCH * QS_UDP_RX_SIZE);
	return rx->bufs == NULL ? QS_ENOMEM : 0;
}

void qs_udp_rx_release(struct qs_udp_rx *rx)
{
	qs_free(rx->bufs);
	rx->bufs = NULL;
}

int qs_udp_recv(struct qs_udp *u, struct qs_udp_rx *rx, size_t *count)
{
	struct mmsghdr msgs[QS_UDP_BATCH];
	struct iovec iov[QS_UDP_BATCH];
	memset(msgs, 0, sizeof(msgs));
	for (size_t i = 0; i < QS_UDP_BATCH; i++) {
		iov[i].iov_base = rx->bufs + i * QS_UDP_RX_SIZE;
		iov[i].iov_len = QS_UDP_RX_SIZE;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &rx->d[i].from;
		msgs[i].msg_hdr.msg_namelen = sizeof(rx->d[i].from);
	}
	int n;
	do {
		n = recvmmsg(u->fd, msgs, QS_UDP_BATCH, MSG_DONTWAIT, NULL);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		*count = 0;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == ECONNREFUSED)
			return QS_ECONN;
		return QS_EIO;
	}
	for (int i = 0; i < n; i++) {
		rx->d[i].data = iov[i].iov_base;
		rx->d[i].len = msgs[i].msg_len;
		rx->d[i].from_len = msgs[i].msg_hdr.msg_namelen;
	}
	*count = (size_t)n;
	return 0;
}

static int send_gso(struct qs_udp *u, const struct sockaddr *to, socklen_t to_len,
		    const uint8_t *data, size_t len, size_t segment)
{
	struct iovec iov = {(void *)(uintptr_t)data, len};
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctrl;
	struct msghdr msg;
	memset(&msg, 0, sizeof(msg));
	msg.msg_name = (void *)(uintptr_t)to;
	msg.msg_namelen = to != NULL ? to_len : 0;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (len > segment) {
		memset(&ctrl, 0, sizeof(ctrl));
		msg.msg_control = ctrl.buf;
		msg.msg_controllen = sizeof(ctrl.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = IPPROTO_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		uint16_t seg16 = (uint16_t)segment;
		memcpy(CMSG_DATA(cm), &seg16, sizeof(seg16));
	}
	ssize_t n;
	do {
		n = sendmsg(u->fd, &msg, 0);
	} while (n < 0 && errno == EINTR);
	if (n >= 0)
		return 0;
	return errno;
}

static int send_mmsg(struct qs_udp *u, const struct sockaddr *to, socklen_t to_len,
		     const uint8_t *data, size_t len, size_t segment, size_t *sent)
{
	struct mmsghdr msgs[QS_UDP_MAX_SEGMENTS];
	struct iovec iov[QS_UDP_MAX_SEGMENTS];
	size_t off = 0;
	*sent = 0;
	while (off < len) {
		unsigned cnt = 0;
		size_t o = off;
		memset(msgs, 0, sizeof(msgs));
		while (o < len && cnt < QS_UDP_MAX_SEGMENTS) {
			size_t l = len - o < segment ? len - o : segment;
			iov[cnt].iov_base = (void *)(uintptr_t)(data + o);
			iov[cnt].iov_len = l;
			msgs[cnt].msg_hdr.msg_iov = &iov[cnt];
			msgs[cnt].msg_hdr.msg_iovlen = 1;
			msgs[cnt].msg_hdr.msg_name = (void *)(uintptr_t)to;
			msgs[cnt].msg_hdr.msg_namelen = to != NULL ? to_len : 0;
			o += l;
			cnt++;
		}
		int n;
		do {
			n = sendmmsg(u->fd, msgs, cnt, 0);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? QS_EAGAIN : QS_EIO;
		for (int i = 0; i < n; i++)
			off += iov[i].iov_len;
		*sent = off;
		if ((unsigned)n < cnt)
			return QS_EAGAIN;
	}
	return 0;
}

int qs_udp_send(struct qs_udp *u, const struct sockaddr *to, socklen_t to_len, const uint8_t *data,
		size_t len, size_t segment, size_t *sent)
{
	*sent = 0;
	if (u->gso || len <= segment) {
		int e = send_gso(u, to, to_len, data, len, segment);
		if (e == 0) {
			*sent = len;
			return 0;
		}
		if (e == EAGAIN || e == EWOULDBLOCK)
			return QS_EAGAIN;
		if (len > segment && (e == EIO || e == EINVAL || e == EOPNOTSUPP)) {
			qs_warn("udp", "event=gso_disabled errno=%d", e);
			u->gso = false;
		} else if (e == EMSGSIZE || e == ECONNREFUSED || e == EHOSTUNREACH ||
			   e == ENETUNREACH) {
			/* The datagram is lost, as it could be on the wire; QUIC recovers. */
			*sent = len;
			return 0;
		} else {
			return QS_EIO;
		}
	}
	return send_mmsg(u, to, to_len, data, len, segment, sent);
}

size_t qs_udp_path_payload(const struct sockaddr *peer, socklen_t len)
{
	int fd = socket(peer->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
		return 0;
	int mtu = 0;
	socklen_t ml = sizeof(mtu);
	size_t payload = 0;
	if (connect(fd, peer, len) == 0) {
		int rc = peer->sa_family == AF_INET
				 ? getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &ml)
				 : getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &ml);
		size_t hdr = peer->sa_family == AF_INET ? 28 : 48;
		if (rc == 0 && (size_t)mtu > hdr)
			payload = (size_t)mtu - hdr;
	}
	close(fd);
	return payload;
}
