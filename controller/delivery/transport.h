/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* transport: the thread that talks to SMTP and HTTP servers, so that the event loop never
 * waits on the network — not for a name lookup, a TLS handshake or a slow server.
 *
 * libcurl is loaded when a site sends e-mail or webhooks, not linked: its libraries
 * (OpenSSL, Kerberos, LDAP, SSH...) would otherwise cost every site about 6 MiB. The OpenSSL
 * build (libcurl4) comes first: it parses the CA store once and shares it between
 * connections, where the GnuTLS build (libcurl3-gnutls, the fallback) parses it again for
 * each connection — about 3 MiB and a noticeable CPU time per connection with the system's
 * CAs (docs/performance.md). All its calls are made on the thread, one curl multi handle for
 * every transfer, so connections to a server are kept and reused.
 *
 * The loop submits requests (copied: the caller's strings may go at once) and hears each
 * outcome, on the loop, through the done callback. Requests still running when the
 * transport is freed are abandoned without a callback: their owners send them again after
 * the next start (delivery is at least once). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct transport;

enum transport_kind {
    TRANSPORT_SMTP,             /* send body as an e-mail from mail_from to rcpt_to */
    TRANSPORT_HTTP_POST,        /* POST body with headers */
};

struct transport_request {
    enum transport_kind kind;
    uint64_t tag;               /* the caller's; comes back in the result */
    const char *url;            /* smtp[s]://HOST[:PORT], http[s]://... */
    const char *ca_file;        /* NULL or "": the system's CAs */
    long timeout_ms;
    /* SMTP */
    bool require_tls;           /* smtp://: STARTTLS or fail */
    const char *username, *password;    /* NULL: no AUTH */
    const char *mail_from, *rcpt_to;    /* addresses (mime_addr_valid) */
    /* both */
    const char *body;
    size_t body_len;
    const char *const *headers; /* HTTP: "Name: value", NULL-terminated; NULL: none */
};

struct transport_result {
    uint64_t tag;
    bool answered;              /* the server answered (code is its reply) */
    long code;                  /* HTTP status, or the SMTP server's last reply code */
    char error[160];            /* why it failed, "" if it did not: curl's words, no secrets */
    uint64_t usec;              /* from submission to the outcome */
};

typedef void (*transport_done_fn)(const struct transport_result *r, void *userdata);

/* Load libcurl and start the thread. -ENOENT if libcurl cannot be loaded (logged). */
int transport_new(sd_event *loop, transport_done_fn done, void *userdata, struct transport **ret);
/* Stop the thread, abandoning what runs. NULL-safe; returns NULL. */
struct transport *transport_free(struct transport *t);

/* Hand a request to the thread. 0, -EINVAL (no url), -ENOMEM. */
int transport_submit(struct transport *t, const struct transport_request *req);
/* Requests submitted whose outcome the loop has not heard yet. */
unsigned transport_pending(const struct transport *t);
