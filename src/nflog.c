// SPDX-License-Identifier: MIT
#include "nflog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <linux/capability.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "gw_policy.h"
#include "log.h"
#include "wire.h"

#define RECV_BUF      (64 * 1024)  /* a kernel batch is far smaller */
#define SOCK_RCVBUF   (4 << 20)    /* room for bursts between two reads */
#define SETUP_TIMEOUT_MS 1000

struct nfl {
	struct mnl_socket *nl;
	struct nfl_rx rx;
	uint8_t *buf;              /* RECV_BUF, aligned as malloc aligns */
	struct log_ratelimit rl;
};

/* ---- pure: the packet, the prefix, a datagram ------------------------------ */

static int parse_ipv4(struct wire *w, size_t len, struct nfl_event *out)
{
	uint8_t vihl = wire_u8(w);
	size_t hlen = (size_t)(vihl & 0x0f) * 4;
	size_t total;

	wire_skip(w, 1);                  /* DSCP, ECN */
	total = wire_u16(w);
	wire_skip(w, 8);                  /* id, fragment, TTL, protocol, checksum */
	wire_read(w, out->src, 4);
	wire_read(w, out->dst, 4);
	if (wire_error(w) || hlen < 20 || hlen > len || total < hlen || len > total)
		return -EBADMSG;
	out->family = AF_INET;
	return 0;
}

static int parse_ipv6(struct wire *w, size_t len, struct nfl_event *out)
{
	size_t payload;
	uint8_t next;

	wire_skip(w, 4);                  /* version, class, flow label */
	payload = wire_u16(w);
	next = wire_u8(w);
	wire_skip(w, 1);                  /* hop limit */
	wire_read(w, out->src, 16);
	wire_read(w, out->dst, 16);
	if (wire_error(w))
		return -EBADMSG;
	/* a jumbogram says 0 and has a hop-by-hop header (RFC 2675) */
	if (!(payload == 0 && next == 0) && len > 40 + payload)
		return -EBADMSG;
	out->family = AF_INET6;
	return 0;
}

int nfl_parse_packet(const uint8_t *pkt, size_t len, int family,
		     struct nfl_event *out)
{
	struct wire w = wire_init(pkt, len);
	unsigned version;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!wire_need(&w, 1))
		return -EBADMSG;
	version = pkt[0] >> 4;
	if (family == AF_INET && version == 4)
		ret = parse_ipv4(&w, len, out);
	else if (family == AF_INET6 && version == 6)
		ret = parse_ipv6(&w, len, out);
	else if (family == AF_UNSPEC && version == 4)
		ret = parse_ipv4(&w, len, out);
	else if (family == AF_UNSPEC && version == 6)
		ret = parse_ipv6(&w, len, out);
	else
		ret = -EBADMSG;
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

bool nfl_prefix_is_binding(const uint8_t *prefix, size_t len)
{
	static const char ours[] = GW_LOG_PREFIX_BIND;
	const uint8_t *nul = len ? memchr(prefix, 0, len) : NULL;
	size_t n = nul ? (size_t)(nul - prefix) : len;

	return n == sizeof(ours) - 1 && memcmp(prefix, ours, n) == 0;
}

/*
 * The message at *off of a datagram, and *off moved past it; NULL when no
 * whole message is left. Not libmnl's mnl_nlmsg_ok/next: they take a
 * length of 0xfffffffd as fitting (it is negative as an int) and then do not
 * move (it aligns to 0), or move gigabytes; and the attribute walk reads up
 * to the message's aligned end, so that end must be inside the datagram.
 */
static const struct nlmsghdr *next_msg(const uint8_t *buf, size_t len, size_t *off)
{
	const struct nlmsghdr *nlh;
	size_t room = len - *off, aligned;

	if (*off >= len || room < NLMSG_HDRLEN)
		return NULL;
	nlh = (const struct nlmsghdr *)(const void *)(buf + *off);
	/* (NLMSG_ALIGN masks with an unsigned int: 0xfffffffd becomes 0) */
	aligned = ((size_t)nlh->nlmsg_len + NLMSG_ALIGNTO - 1) & ~(size_t)(NLMSG_ALIGNTO - 1);
	if (nlh->nlmsg_len < NLMSG_HDRLEN || aligned > room)
		return NULL;
	*off += aligned;
	return nlh;
}

/* One NFULNL_MSG_PACKET message; 1 when it went to fn. */
static int rx_record(struct nfl_rx *rx, const struct nlmsghdr *nlh,
		     nfl_fn *fn, void *ctx)
{
	struct nlattr *attr[NFULA_MAX + 1] = { 0 };
	const struct nfgenmsg *nfg;
	struct nfl_event ev;
	const uint8_t *prefix = NULL;
	size_t prefix_len = 0;

	if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*nfg) ||
	    nflog_nlmsg_parse(nlh, attr) < 0)
		goto bad;
	nfg = mnl_nlmsg_get_payload(nlh);
	if (ntohs(nfg->res_id) != rx->group)
		goto bad;
	if (attr[NFULA_SEQ]) {
		uint32_t seq = ntohl(mnl_attr_get_u32(attr[NFULA_SEQ]));
		uint32_t gap = seq - rx->next_seq;

		/* (a number before the expected one is not a loss) */
		if (rx->have_seq && gap && gap < UINT32_MAX / 2)
			rx->stats.lost += gap;
		rx->next_seq = seq + 1;
		rx->have_seq = true;
	}
	if (!attr[NFULA_PAYLOAD] ||
	    nfl_parse_packet(mnl_attr_get_payload(attr[NFULA_PAYLOAD]),
			     mnl_attr_get_payload_len(attr[NFULA_PAYLOAD]),
			     nfg->nfgen_family, &ev) < 0)
		goto bad;
	if (attr[NFULA_PREFIX]) {
		prefix = mnl_attr_get_payload(attr[NFULA_PREFIX]);
		prefix_len = mnl_attr_get_payload_len(attr[NFULA_PREFIX]);
	}
	ev.is_binding = prefix && nfl_prefix_is_binding(prefix, prefix_len);
	rx->stats.records++;
	fn(ctx, &ev);
	return 1;
bad:
	rx->stats.bad++;
	return 0;
}

int nfl_rx_datagram(struct nfl_rx *rx, const uint8_t *buf, size_t len,
		    nfl_fn *fn, void *ctx)
{
	const struct nlmsghdr *nlh;
	size_t off = 0;
	int n = 0;

	if ((uintptr_t)buf % NLMSG_ALIGNTO)
		return -EINVAL;
	while ((nlh = next_msg(buf, len, &off)) && n < INT_MAX) {
		if (nlh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
			continue;   /* NLMSG_DONE ends a batch; nothing else is ours */
		n += rx_record(rx, nlh, fn, ctx);
	}
	/* bytes that are no whole message: a datagram cut short */
	if (off < len)
		rx->stats.bad++;
	return n;
}

/* ---- the socket -------------------------------------------------------------- */

/* Whether this process may configure netfilter (CAP_NET_ADMIN effective). */
static bool have_net_admin(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };

	if (syscall(SYS_capget, &hdr, data) < 0)
		return true;   /* unknown: say what is likelier */
	return data[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32));
}

/* The kernel's answer to the configuration message seq: 0 or -errno. */
static int setup_ack(struct nfl *n, uint32_t seq)
{
	for (;;) {
		ssize_t len = mnl_socket_recvfrom(n->nl, n->buf, RECV_BUF);
		const struct nlmsghdr *nlh;
		size_t off = 0;

		if (len < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		while ((nlh = next_msg(n->buf, (size_t)len, &off))) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

			/* a record may come first: it is dropped */
			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(e->error))
				return -EBADMSG;
			return e->error;
		}
	}
}

/* Bind the group and configure it, in one acknowledged message. */
static int setup(struct nfl *n, uint16_t group)
{
	char req[256] = { 0 };
	struct nlmsghdr *nlh = nflog_nlmsg_put_header(req, NFULNL_MSG_CONFIG,
						       AF_UNSPEC, group);
	uint32_t seq = (uint32_t)time(NULL);

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	nflog_attr_put_cfg_cmd(nlh, NFULNL_CFG_CMD_BIND);
	nflog_attr_put_cfg_mode(nlh, NFULNL_COPY_PACKET, GW_LOG_SNAPLEN);
	mnl_attr_put_u32(nlh, NFULA_CFG_TIMEOUT, htonl(NFL_TIMEOUT_CS));
	mnl_attr_put_u32(nlh, NFULA_CFG_QTHRESH, htonl(NFL_QTHRESH));
	mnl_attr_put_u16(nlh, NFULA_CFG_FLAGS, htons(NFULNL_CFG_F_SEQ));
	if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return setup_ack(n, seq);
}

int nfl_open(uint16_t group, struct nfl **out)
{
	struct timeval tv = { .tv_sec = SETUP_TIMEOUT_MS / 1000,
			      .tv_usec = (SETUP_TIMEOUT_MS % 1000) * 1000 };
	struct nfl *n = calloc(1, sizeof(*n));
	int size = SOCK_RCVBUF, fd, flags, ret;

	*out = NULL;
	if (!n || !(n->buf = malloc(RECV_BUF))) {
		ret = -ENOMEM;
		goto fail;
	}
	n->rx.group = group;
	n->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(1, 5);
	n->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!n->nl || mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto fail;
	}
	fd = mnl_socket_get_fd(n->nl);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* past net.core.rmem_max with CAP_NET_ADMIN; else what rmem allows */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	ret = setup(n, group);
	if (ret == -EPERM && have_net_admin())
		ret = -EBUSY;  /* the kernel's answer when another socket has it */
	if (ret < 0)
		goto fail;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail;
	}
	*out = n;
	return 0;
fail:
	if (ret == -EBUSY)
		log_err("nflog group %u is taken by another program: set [daemon] "
			"nflog_group", group);
	else if (ret == -EPERM)
		log_err("nflog group %u: binding it needs CAP_NET_ADMIN", group);
	else
		log_err("nflog group %u: cannot bind it: %s", group, strerror(-ret));
	nfl_close(n);
	return ret;
}

int nfl_fd(const struct nfl *n)
{
	return mnl_socket_get_fd(n->nl);
}

int nfl_read(struct nfl *n, nfl_fn *fn, void *ctx)
{
	uint64_t bad = n->rx.stats.bad;
	int total = 0;

	for (int i = 0; i < NFL_READ_MAX; i++) {
		struct sockaddr_nl from;
		struct iovec iov = { n->buf, RECV_BUF };
		struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof(from),
				      .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t len = recvmsg(nfl_fd(n), &msg, MSG_DONTWAIT);

		if (len < 0 && errno == ENOBUFS) {
			n->rx.stats.overruns++;
			if (log_ratelimit_ok(&n->rl, log_now_ms()))
				log_warn("nflog group %u: the socket overran, records "
					 "were lost (%llu times; %llu records missing "
					 "by their numbers)", n->rx.group,
					 (unsigned long long)n->rx.stats.overruns,
					 (unsigned long long)n->rx.stats.lost);
			continue;
		}
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (len < 0)
			return -errno;
		/* only the kernel speaks here; a cut datagram is not read */
		if (msg.msg_namelen != sizeof(from) || from.nl_pid != 0 ||
		    (msg.msg_flags & MSG_TRUNC)) {
			n->rx.stats.bad++;
			continue;
		}
		total += nfl_rx_datagram(&n->rx, n->buf, (size_t)len, fn, ctx);
	}
	if (n->rx.stats.bad != bad && log_ratelimit_ok(&n->rl, log_now_ms()))
		log_warn("nflog group %u: %llu records did not parse (%llu so far)",
			 n->rx.group, (unsigned long long)(n->rx.stats.bad - bad),
			 (unsigned long long)n->rx.stats.bad);
	return total;
}

void nfl_get_stats(const struct nfl *n, struct nfl_stats *out)
{
	*out = n->rx.stats;
}

void nfl_close(struct nfl *n)
{
	if (!n)
		return;
	/* closing the socket unbinds the group (the kernel's release hook) */
	if (n->nl)
		mnl_socket_close(n->nl);
	free(n->buf);
	free(n);
}
