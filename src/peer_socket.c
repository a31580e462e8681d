// SPDX-License-Identifier: MIT
/*
 * Where a link's socket comes from: the connects of a DNS node (to its
 * gateways and controller) and of a gateway (to its controller), and the
 * listening socket of a gateway or a controller, with the caps applied at
 * accept (the peers' 'from', PEER_MAX_UNAUTH pending, PEER_MAX_PER_SOURCE from one
 * address) before a connection takes a slot.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "peer_impl.h"

#define ACCEPT_BURST 64

/* ---- connecting (a DNS node, a gateway) -------------------------------------------------- */

void peer_connect(struct peers *p, size_t i, uint64_t now)
{
	const struct config_peer *cp = &p->cfg->peers[i];
	struct peer_state *ps = &p->ps[i];
	struct link *l = ps->client;
	int fd, ret;

	ps->next_try_ms = now + ps->backoff_ms;
	ps->backoff_ms = ps->backoff_ms * 2 > PEER_BACKOFF_MAX_MS ?
			 PEER_BACKOFF_MAX_MS : ps->backoff_ms * 2;
	fd = socket(cp->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ps->last_errno = errno;
		return;
	}
	ret = connect(fd, (const struct sockaddr *)&cp->address, cp->address_len);
	if (ret < 0 && errno != EINPROGRESS) {
		ps->last_errno = errno;
		close(fd);
		return;
	}
	if (peer_link_init(p, l, fd, true, (int)i, (const struct sockaddr *)&cp->address,
		      cp->address_len) < 0) {
		close(fd);
		return;
	}
	l->key = peer_find_key(p, (uint16_t)cp->key_ids[0]);
	if (!l->key) /* the configuration check makes this impossible */
		peer_close(l, PEER_R_KEY_ID);
}

/* ---- accepting (a gateway, a controller) ---------------------------------------------------- */

/* Whether a is inside the 'from' of a peer that connects here. */
static bool from_a_peer(const struct peers *p, int family, const uint8_t *a)
{
	for (size_t i = 0; i < p->cfg->n_peers; i++) {
		const struct config_peer *cp = &p->cfg->peers[i];

		if (config_role_connects(cp->role, p->cfg->role) && cp->has_from &&
		    addr_prefix_contains(&cp->from, family, a))
			return true;
	}
	return false;
}

static size_t pending_from(const struct peers *p, int family, const uint8_t *a)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_links; i++) {
		const struct link *l = &p->links[i];

		n += l->h.fd >= 0 && l->st != L_UP && l->family == family &&
		     memcmp(l->addr_bytes, a, 16) == 0;
	}
	return n;
}

static void refuse(struct peers *p, int fd, uint64_t *counter, const char *why,
		   const struct sockaddr *sa)
{
	close(fd);
	(*counter)++;
	if (log_ratelimit_ok(&p->rl_refuse, log_now_ms())) {
		char a[ADDR_STRLEN];

		log_info("peer: connection from %s refused at accept: %s",
			 addr_sockaddr_format(sa, a), why);
	}
}

static void on_accept(struct loop_handler *h, uint32_t events)
{
	struct peers *p = container_of(h, struct peers, listener);

	(void)events;
	for (int burst = 0; burst < ACCEPT_BURST; burst++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(h->fd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		const struct sockaddr *sa = (const struct sockaddr *)&ss;
		uint8_t a[16] = { 0 };
		struct link *slot = NULL;
		int family = 0;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or out of descriptors: retried next event */
		}
		p->accepted++;
		addr_from_sockaddr(sa, &family, a);
		if (p->from_only && !from_a_peer(p, family, a)) {
			refuse(p, fd, &p->refused_from, "from no peer's 'from'", sa);
			continue;
		}
		if (p->unauth >= PEER_MAX_UNAUTH) {
			refuse(p, fd, &p->refused_full, "64 handshakes pending", sa);
			continue;
		}
		if (pending_from(p, family, a) >= PEER_MAX_PER_SOURCE) {
			refuse(p, fd, &p->refused_source,
			       "4 handshakes pending from this address", sa);
			continue;
		}
		/* the first n_peers slots are for this node's own connects */
		for (size_t i = p->cfg->n_peers; i < p->n_links && !slot; i++)
			if (p->links[i].h.fd < 0)
				slot = &p->links[i];
		if (!slot || peer_link_init(p, slot, fd, false, -1, sa, len) < 0) {
			refuse(p, fd, &p->refused_full, "no free slot", sa);
			continue;
		}
		p->unauth++;
	}
}

int peer_listen(struct peers *p)
{
	const struct config *cfg = p->cfg;
	const struct sockaddr *sa = (const struct sockaddr *)&cfg->peer_listen;
	char a[ADDR_STRLEN];
	int one = 1, fd;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, cfg->peer_listen_len) < 0 || listen(fd, 128) < 0)
		goto fail;
	p->listener.fd = fd;
	p->listener.fn = on_accept;
	if (loop_add(p->loop, &p->listener, EPOLLIN) < 0)
		goto fail;
	log_info("peer: listening on %s for %s", addr_sockaddr_format(sa, a),
		 cfg->role == CONFIG_ROLE_CONTROLLER ? "DNS nodes and gateways" :
		 "DNS nodes");
	return 0;
fail:
	log_err("peer: cannot listen on %s: %m", addr_sockaddr_format(sa, a));
	if (fd >= 0)
		close(fd);
	p->listener.fd = -1;
	return -errno;
}
