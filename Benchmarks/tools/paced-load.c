// paced-load — an open-loop, constant-rate HTTP/1.1 load generator that measures latency from
// each request's *intended* send time (as wrk2 does), so a server that stalls is charged for
// every request that should have been sent during the stall (no coordinated omission).
//
// Built by Benchmarks/run (gcc -O2, no dependencies beyond libc):
//   gcc -O2 -Wall -Wextra -o Benchmarks/out/.../paced-load Benchmarks/tools/paced-load.c
//
// Usage:
//   paced-load -R RATE -d SECONDS [-w SECONDS] [-c CONNECTIONS] [-H HEADER_FILE]...
//              [-h 'Name: value']... [-T DRAIN_SECONDS] URL
//     -R  requests per second, all connections together (the schedule: request i is due at
//         start + i / RATE, whatever happened to the ones before it)
//     -d  measured seconds (after the warm-up)
//     -w  warm-up seconds, sent on the same schedule but not recorded (default 2)
//     -c  keep-alive connections (default 64); a due request goes out on the connection that
//         has been idle longest; when every connection is busy it waits in a queue, and its
//         latency still counts from when it was due
//     -H  a file of "Name: value" lines added to every request ('#' lines and blank lines skipped)
//     -h  one header line
//     -T  after the last send, how long to wait for outstanding responses (default 5)
//     URL http://HOST:PORT/PATH (IPv4 literal HOST; no TLS)
//
// Timing: the process sleeps until the next due time in epoll_pwait2 (nanosecond timeout; an
// absolute timerfd where the kernel lacks it), with its timer slack set to 1 ns.
//
// Output: "key value" lines on stdout (Benchmarks/run parses them), e.g.
//   target_rps 28000            the schedule
//   sent 420000                 due in the measured window and sent
//   completed 420000            of those, answered (any status)
//   achieved_rps 27999.9        completed / measured seconds
//   non2xx 0, socket_errors 0, unanswered 0   (unanswered: no response by the end of -T)
//   latency_ms_p50 0.412 ... latency_ms_p99 1.234 ... latency_ms_max   from the intended send time
//   service_ms_p50 ... service_ms_p99            from the actual send (what wrk reports)
//   send_lag_ms_p99 ... send_lag_ms_max           actual send - intended (queueing + this client)
//   client_late_ms_p99 ... client_late_ms_max     when this client woke up and saw a request due
//                                                 - its due time: this client's own lateness (its
//                                                 core busy, the wake-up), not the server's
// Exit status 0 when it ran; 1 on a usage or setup error.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE 65536

enum { C_CONNECTING, C_IDLE, C_BUSY, C_DEAD };

typedef struct {
    int fd;
    int state;
    int index;
    uint64_t intended_ns;  // the request in flight: when it was due
    uint64_t sent_ns;      // and when it went out
    int measured;          // due inside the measured window
    int in_idle;           // its index is in the idle FIFO
    uint32_t events;       // what epoll watches for it now
    size_t woff;           // bytes of the request written so far
    char rbuf[RBUF_SIZE];
    size_t rlen;
} conn_t;

static struct sockaddr_in g_addr;
static char *g_req;
static size_t g_req_len;
static int g_epfd;
static conn_t *g_conns;
static int g_nconns;

// FIFO of idle connection indices, FIFO of due request times (queue when every connection is busy)
static int *g_idle; static int g_idle_head, g_idle_count;
static uint64_t *g_due; static size_t g_due_cap, g_due_head, g_due_count;

static uint64_t *g_lat, *g_svc, *g_lag; static size_t g_nlat, g_caplat;
static uint64_t *g_late; static size_t g_nlate, g_caplate;  // when this client noticed a due request - its due time
static uint64_t g_sent_measured, g_completed, g_non2xx, g_sock_errors, g_queue_overflow, g_reconnects;
static uint64_t g_window_start, g_window_end;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg) { fprintf(stderr, "paced-load: %s\n", msg); exit(1); }
static void die_errno(const char *what) { fprintf(stderr, "paced-load: %s: %s\n", what, strerror(errno)); exit(1); }

static void idle_push(int i) {
    if (g_conns[i].in_idle) return;
    g_conns[i].in_idle = 1;
    g_idle[(g_idle_head + g_idle_count) % g_nconns] = i;
    g_idle_count++;
}
static int idle_pop(void) {
    int i = g_idle[g_idle_head];
    g_idle_head = (g_idle_head + 1) % g_nconns;
    g_idle_count--;
    g_conns[i].in_idle = 0;
    return i;
}
static void due_push(uint64_t t) {
    if (g_due_count == g_due_cap) { g_queue_overflow++; return; }
    g_due[(g_due_head + g_due_count) % g_due_cap] = t;
    g_due_count++;
}
static uint64_t due_pop(void) {
    uint64_t t = g_due[g_due_head];
    g_due_head = (g_due_head + 1) % g_due_cap;
    g_due_count--;
    return t;
}

static void record(conn_t *c, uint64_t done) {
    if (!c->measured) return;
    g_completed++;
    if (g_nlat == g_caplat) {
        g_caplat = g_caplat ? g_caplat * 2 : 1 << 16;
        g_lat = realloc(g_lat, g_caplat * sizeof *g_lat);
        g_svc = realloc(g_svc, g_caplat * sizeof *g_svc);
        g_lag = realloc(g_lag, g_caplat * sizeof *g_lag);
        if (!g_lat || !g_svc || !g_lag) die("out of memory");
    }
    g_lat[g_nlat] = done - c->intended_ns;
    g_svc[g_nlat] = done - c->sent_ns;
    g_lag[g_nlat] = c->sent_ns - c->intended_ns;
    g_nlat++;
}

static void ep_mod(conn_t *c, uint32_t events) {
    if (c->events == events) return;  // one system call less per request
    c->events = events;
    struct epoll_event ev = { .events = events, .data.u32 = (uint32_t)c->index };
    if (epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die_errno("epoll_ctl MOD");
}

static void conn_open(conn_t *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die_errno("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->rlen = 0; c->woff = 0;
    if (connect(c->fd, (struct sockaddr *)&g_addr, sizeof g_addr) < 0 && errno != EINPROGRESS) die_errno("connect");
    c->state = C_CONNECTING;
    c->events = EPOLLOUT | EPOLLIN;
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.u32 = (uint32_t)c->index };
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die_errno("epoll_ctl ADD");
}

// A connection broke: count it (and the request in flight), open a new one.
// A request in flight on it is lost (it counts as unanswered).
static void conn_fail(conn_t *c) {
    g_sock_errors++;
    epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    g_reconnects++;
    conn_open(c);
}

static void conn_write(conn_t *c) {
    while (c->woff < g_req_len) {
        ssize_t n = write(c->fd, g_req + c->woff, g_req_len - c->woff);
        if (n < 0) {
            if (errno == EAGAIN) { ep_mod(c, EPOLLIN | EPOLLOUT); return; }
            if (errno == EINTR) continue;
            conn_fail(c); return;
        }
        c->woff += (size_t)n;
    }
    ep_mod(c, EPOLLIN);
}

static void conn_send(conn_t *c, uint64_t intended, uint64_t now) {
    c->state = C_BUSY;
    c->intended_ns = intended;
    c->sent_ns = now;
    c->measured = intended >= g_window_start && intended < g_window_end;
    if (c->measured) g_sent_measured++;
    c->woff = 0;
    c->rlen = 0;
    conn_write(c);
}

// Is a whole response in c->rbuf? Returns its length (bytes), 0 if not yet, -1 if malformed.
// Sets *status and *close_after.
static long response_complete(conn_t *c, int *status, int *close_after) {
    char *buf = c->rbuf; size_t len = c->rlen;
    char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return len >= RBUF_SIZE ? -1 : 0;
    size_t head = (size_t)(end - buf) + 4;
    if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0) return -1;
    *status = atoi(buf + 9);
    *close_after = strncmp(buf, "HTTP/1.0", 8) == 0;
    long content_length = -1; int chunked = 0;
    for (char *line = memchr(buf, '\n', head) + 1; line < buf + head - 2;) {
        char *eol = memchr(line, '\n', (size_t)(buf + head - line));
        if (!eol) break;
        if (strncasecmp(line, "content-length:", 15) == 0) content_length = strtol(line + 15, NULL, 10);
        else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
            char *v = line + 18;
            for (; v < eol; v++) if (strncasecmp(v, "chunked", 7) == 0) { chunked = 1; break; }
        } else if (strncasecmp(line, "connection:", 11) == 0) {
            char *v = line + 11;
            for (; v < eol; v++) if (strncasecmp(v, "close", 5) == 0) { *close_after = 1; break; }
        }
        line = eol + 1;
    }
    if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200)) return (long)head;
    if (chunked) {
        size_t pos = head;
        for (;;) {
            char *eol = memmem(buf + pos, len - pos, "\r\n", 2);
            if (!eol) return len >= RBUF_SIZE ? -1 : 0;
            long size = strtol(buf + pos, NULL, 16);
            if (size < 0) return -1;
            pos = (size_t)(eol - buf) + 2;
            if (size == 0) {  // trailers, then an empty line
                for (;;) {
                    char *e2 = memmem(buf + pos, len - pos, "\r\n", 2);
                    if (!e2) return len >= RBUF_SIZE ? -1 : 0;
                    size_t l = (size_t)(e2 - (buf + pos));
                    pos += l + 2;
                    if (l == 0) return (long)pos;
                }
            }
            if (pos + (size_t)size + 2 > len) return len >= RBUF_SIZE ? -1 : 0;
            pos += (size_t)size + 2;
        }
    }
    if (content_length < 0) return -1;  // read-until-close bodies are not supported
    if (head + (size_t)content_length > len) return head + (size_t)content_length > RBUF_SIZE ? -1 : 0;
    return (long)(head + (size_t)content_length);
}

static void conn_read(conn_t *c) {
    for (;;) {
        if (c->rlen == RBUF_SIZE) { conn_fail(c); return; }
        ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
        if (n < 0) {
            if (errno == EAGAIN) return;
            if (errno == EINTR) continue;
            conn_fail(c); return;
        }
        if (n == 0) { conn_fail(c); return; }
        c->rlen += (size_t)n;
        if (c->state != C_BUSY) { conn_fail(c); return; }  // bytes nobody asked for
        int status = 0, close_after = 0;
        long used = response_complete(c, &status, &close_after);
        if (used < 0) { conn_fail(c); return; }
        if (used == 0) continue;
        uint64_t done = now_ns();
        record(c, done);
        if (c->measured && (status < 200 || status > 299)) g_non2xx++;
        if ((size_t)used != c->rlen || close_after) {
            // extra bytes, or the server closes: the request was answered; start afresh
            c->state = C_IDLE;
            epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            g_reconnects++;
            conn_open(c);
            return;
        }
        c->rlen = 0;
        c->state = C_IDLE;
        idle_push(c->index);
        return;
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
static double pct_ms(uint64_t *v, size_t n, double p) {
    if (n == 0) return -1;
    size_t i = (size_t)(p / 100.0 * (double)n);
    if (i >= n) i = n - 1;
    return (double)v[i] / 1e6;
}

static char *append(char *dst, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        dst = realloc(dst, *cap);
        if (!dst) die("out of memory");
    }
    memcpy(dst + *len, s, n);
    *len += n;
    dst[*len] = 0;
    return dst;
}

int main(int argc, char **argv) {
    double rate = 0, duration = 0, warmup = 2, drain = 5;
    int nconns = 64, opt;
    char *hdrs = NULL; size_t hlen = 0, hcap = 0;
    while ((opt = getopt(argc, argv, "R:d:w:c:H:h:T:")) != -1) {
        switch (opt) {
        case 'R': rate = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 'T': drain = atof(optarg); break;
        case 'h':
            hdrs = append(hdrs, &hlen, &hcap, optarg, strlen(optarg));
            hdrs = append(hdrs, &hlen, &hcap, "\r\n", 2);
            break;
        case 'H': {
            FILE *f = fopen(optarg, "r");
            if (!f) die_errno(optarg);
            char line[16384];
            while (fgets(line, sizeof line, f)) {
                size_t l = strcspn(line, "\r\n");
                line[l] = 0;
                char *p = line; while (*p == ' ' || *p == '\t') p++;
                if (*p == 0 || *p == '#') continue;
                if (!strchr(p, ':')) die("a header line without ':'");
                hdrs = append(hdrs, &hlen, &hcap, p, strlen(p));
                hdrs = append(hdrs, &hlen, &hcap, "\r\n", 2);
            }
            fclose(f);
            break;
        }
        default:
            fprintf(stderr, "usage: paced-load -R RATE -d SECONDS [-w S] [-c N] [-H FILE] [-h HDR] [-T S] http://IP:PORT/PATH\n");
            return 1;
        }
    }
    if (optind != argc - 1 || rate <= 0 || duration <= 0 || nconns <= 0 || warmup < 0)
        die("usage: paced-load -R RATE -d SECONDS [-w S] [-c N] [-H FILE] [-h HDR] [-T S] http://IP:PORT/PATH");
    const char *url = argv[optind];
    if (strncmp(url, "http://", 7) != 0) die("URL must start with http://");
    char host[256]; int port = 80; const char *path = "/";
    const char *hp = url + 7, *slash = strchr(hp, '/');
    size_t hostlen = slash ? (size_t)(slash - hp) : strlen(hp);
    if (hostlen >= sizeof host) die("host too long");
    memcpy(host, hp, hostlen); host[hostlen] = 0;
    if (slash) path = slash;
    char *colon = strchr(host, ':');
    char hostname[256]; strcpy(hostname, host);
    if (colon) { port = atoi(colon + 1); hostname[colon - host] = 0; }
    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, hostname, &g_addr.sin_addr) != 1) die("HOST must be an IPv4 address");

    size_t rcap = 0; g_req_len = 0; g_req = NULL;
    char first[2048];
    int fl = snprintf(first, sizeof first, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, host);
    g_req = append(g_req, &g_req_len, &rcap, first, (size_t)fl);
    if (hdrs) g_req = append(g_req, &g_req_len, &rcap, hdrs, hlen);
    g_req = append(g_req, &g_req_len, &rcap, "\r\n", 2);

    // Wake up on time: the default 50 µs timer slack would delay every timer expiry.
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_epfd < 0) die_errno("epoll_create1");
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) die_errno("timerfd_create");
    struct epoll_event tev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, tfd, &tev) < 0) die_errno("epoll_ctl timerfd");

    g_nconns = nconns;
    g_conns = calloc((size_t)nconns, sizeof *g_conns);
    g_idle = calloc((size_t)nconns, sizeof *g_idle);
    g_due_cap = 1 << 22;
    g_due = malloc(g_due_cap * sizeof *g_due);
    if (!g_conns || !g_idle || !g_due) die("out of memory");
    for (int i = 0; i < nconns; i++) { g_conns[i].index = i; conn_open(&g_conns[i]); }

    // Wait (up to 5 s) until every connection is established.
    struct epoll_event evs[256];
    uint64_t deadline = now_ns() + 5000000000ull;
    while (g_idle_count < nconns) {
        if (now_ns() > deadline) die("could not open every connection within 5 s");
        int n = epoll_wait(g_epfd, evs, 256, 100);
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == UINT32_MAX) continue;
            conn_t *c = &g_conns[evs[k].data.u32];
            if (c->state != C_CONNECTING) continue;
            int err = 0; socklen_t el = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err) { errno = err; die_errno("connect"); }
            c->state = C_IDLE;
            ep_mod(c, EPOLLIN);
            idle_push(c->index);
        }
    }
    g_reconnects = 0;

    const uint64_t start = now_ns() + 1000000;  // 1 ms from now
    g_window_start = start + (uint64_t)(warmup * 1e9);
    g_window_end = g_window_start + (uint64_t)(duration * 1e9);
    const double interval_ns = 1e9 / rate;
    uint64_t next_i = 0;
    uint64_t next_due = start;
    uint64_t armed = 0;
    int use_pwait2 = 1;
    uint64_t drain_deadline = g_window_end + (uint64_t)(drain * 1e9);

    for (;;) {
        uint64_t now = now_ns();
        // Everything due by now joins the queue; then hand queued requests to idle connections.
        while (next_due <= now && next_due < g_window_end) {
            if (next_due >= g_window_start) {
                if (g_nlate == g_caplate) {
                    g_caplate = g_caplate ? g_caplate * 2 : 1 << 16;
                    g_late = realloc(g_late, g_caplate * sizeof *g_late);
                    if (!g_late) die("out of memory");
                }
                g_late[g_nlate++] = now - next_due;
            }
            due_push(next_due);
            next_i++;
            next_due = start + (uint64_t)((double)next_i * interval_ns);
        }
        while (g_due_count > 0 && g_idle_count > 0) {
            conn_t *c = &g_conns[idle_pop()];
            if (c->state != C_IDLE) continue;  // broke while idle; back in the FIFO once reconnected
            conn_send(c, due_pop(), now);
        }
        int sending = next_due < g_window_end;
        if (!sending) {
            int busy = 0;
            for (int i = 0; i < nconns; i++) if (g_conns[i].state == C_BUSY && g_conns[i].measured) busy++;
            if ((busy == 0 && g_due_count == 0) || now >= drain_deadline) break;
        }
        uint64_t wake = sending ? next_due : drain_deadline;
        int n = -1;
#ifdef SYS_epoll_pwait2
        // epoll_pwait2 (Linux 5.11): a nanosecond timeout, one system call per wake-up.
        if (use_pwait2) {
            uint64_t t = now_ns();
            uint64_t rel = wake > t ? wake - t : 0;
            struct timespec ts = { .tv_sec = (time_t)(rel / 1000000000ull), .tv_nsec = (long)(rel % 1000000000ull) };
            n = (int)syscall(SYS_epoll_pwait2, g_epfd, evs, 256, &ts, NULL, (size_t)8);
            if (n < 0 && errno == ENOSYS) use_pwait2 = 0;
        }
#endif
        if (!use_pwait2) {  // older kernels: an absolute timerfd, re-armed when the wake-up time changes
            if (wake != armed) {
                struct itimerspec its = { .it_value = { .tv_sec = (time_t)(wake / 1000000000ull), .tv_nsec = (long)(wake % 1000000000ull) } };
                if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die_errno("timerfd_settime");
                armed = wake;
            }
            n = epoll_wait(g_epfd, evs, 256, -1);
        }
        if (n < 0) { if (errno == EINTR) continue; die_errno("epoll_wait"); }
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == UINT32_MAX) {
                uint64_t exp;
                if (read(tfd, &exp, sizeof exp) < 0 && errno != EAGAIN) die_errno("read timerfd");
                armed = 0;
                continue;
            }
            conn_t *c = &g_conns[evs[k].data.u32];
            if (c->state == C_CONNECTING) {
                int err = 0; socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) { g_sock_errors++; epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); conn_open(c); continue; }
                c->state = C_IDLE;
                ep_mod(c, EPOLLIN);
                idle_push(c->index);
                continue;
            }
            if ((evs[k].events & EPOLLOUT) && c->state == C_BUSY && c->woff < g_req_len) conn_write(c);
            if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_read(c);
        }
    }
    uint64_t unanswered = g_sent_measured - g_completed;
    // due in the window but never sent (queue still full at the drain deadline, or overflowed)
    uint64_t unsent = g_due_count + g_queue_overflow;

    qsort(g_lat, g_nlat, sizeof *g_lat, cmp_u64);
    qsort(g_svc, g_nlat, sizeof *g_svc, cmp_u64);
    qsort(g_lag, g_nlat, sizeof *g_lag, cmp_u64);
    qsort(g_late, g_nlate, sizeof *g_late, cmp_u64);
    printf("target_rps %.1f\n", rate);
    printf("duration_s %.3f\n", duration);
    printf("warmup_s %.3f\n", warmup);
    printf("connections %d\n", nconns);
    printf("sent %llu\n", (unsigned long long)g_sent_measured);
    printf("completed %llu\n", (unsigned long long)g_completed);
    printf("achieved_rps %.1f\n", (double)g_completed / duration);
    printf("non2xx %llu\n", (unsigned long long)g_non2xx);
    printf("socket_errors %llu\n", (unsigned long long)g_sock_errors);
    printf("unanswered %llu\n", (unsigned long long)unanswered);
    printf("unsent %llu\n", (unsigned long long)unsent);
    printf("reconnects %llu\n", (unsigned long long)g_reconnects);
    static const double ps[] = { 50, 90, 99, 99.9 };
    static const char *pn[] = { "p50", "p90", "p99", "p999" };
    for (int k = 0; k < 4; k++) printf("latency_ms_%s %.3f\n", pn[k], pct_ms(g_lat, g_nlat, ps[k]));
    printf("latency_ms_max %.3f\n", g_nlat ? (double)g_lat[g_nlat - 1] / 1e6 : -1.0);
    for (int k = 0; k < 4; k++) printf("service_ms_%s %.3f\n", pn[k], pct_ms(g_svc, g_nlat, ps[k]));
    printf("send_lag_ms_p99 %.3f\n", pct_ms(g_lag, g_nlat, 99));
    printf("send_lag_ms_max %.3f\n", g_nlat ? (double)g_lag[g_nlat - 1] / 1e6 : -1.0);
    printf("client_late_ms_p99 %.3f\n", pct_ms(g_late, g_nlate, 99));
    printf("client_late_ms_max %.3f\n", g_nlate ? (double)g_late[g_nlate - 1] / 1e6 : -1.0);
    return 0;
}
