/* MQTT-like telemetry client: resolves the fleet broker, sends CONNECT then periodic PUBLISH frames. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BROKER_HOST "telemetry.fleet.internal"
#define BROKER_PORT "1883"
#define TOPIC "devices/jetson/status"

static size_t put_str(unsigned char *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (unsigned char)(n >> 8);
    p[1] = (unsigned char)(n & 0xff);
    memcpy(p + 2, s, n);
    return n + 2;
}

static int broker_connect(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    if (getaddrinfo(BROKER_HOST, BROKER_PORT, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int send_frame(int fd, unsigned char type, const unsigned char *body, size_t len)
{
    unsigned char hdr[2] = {type, (unsigned char)len};
    if (send(fd, hdr, 2, 0) != 2)
        return -1;
    return send(fd, body, len, 0) == (ssize_t)len ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *client_id = argc > 1 ? argv[1] : "jetson-0001";
    int fd = broker_connect();
    if (fd < 0) {
        fprintf(stderr, "telemetry_client: broker %s unreachable\n", BROKER_HOST);
        return 1;
    }
    unsigned char body[120];
    size_t n = put_str(body, "MQTT");
    body[n++] = 4;    /* protocol level */
    body[n++] = 0x02; /* clean session */
    body[n++] = 0;
    body[n++] = 60; /* keep-alive seconds */
    n += put_str(body + n, client_id);
    if (send_frame(fd, 0x10, body, n) < 0)
        return 1;
    for (int seq = 0; seq < 100; seq++) {
        char payload[64];
        int plen = snprintf(payload, sizeof payload, "{\"seq\":%d,\"t\":%ld}", seq, (long)time(NULL));
        n = put_str(body, TOPIC);
        memcpy(body + n, payload, (size_t)plen);
        if (send_frame(fd, 0x30, body, n + (size_t)plen) < 0)
            break;
        sleep(10);
    }
    close(fd);
    return 0;
}
