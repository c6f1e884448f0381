/* memtest_svc: hammers DRAM rows in a huge anonymous mapping, flushing cache lines between reads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define REGION_BYTES (512UL << 20)
#define ROW_STRIDE (8192UL) /* bytes between rows in the same bank, typical LPDDR4x */
#define PAGE 4096UL

static inline void flush_line(volatile void *p)
{
#ifdef __aarch64__
    __asm__ volatile("dc civac, %0" ::"r"(p) : "memory");
    __asm__ volatile("dsb ish" ::: "memory");
#else
    __sync_synchronize();
    (void)p;
#endif
}

static unsigned hammer(volatile uint64_t *a, volatile uint64_t *b, long rounds)
{
    unsigned sink = 0;
    for (long r = 0; r < rounds; r++) {
        sink += (unsigned)*a;
        sink += (unsigned)*b;
        flush_line(a);
        flush_line(b);
    }
    return sink;
}

/* Walks the region with a stride that defeats the prefetcher and counts flipped bits. */
static unsigned long check(uint8_t *base, size_t len, uint8_t pattern)
{
    unsigned long flips = 0;
    for (size_t off = 0; off < len; off += 64 + PAGE)
        flips += (unsigned long)__builtin_popcount((unsigned)(base[off] ^ pattern));
    return flips;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 2000000L;
    uint8_t *mem = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    madvise(mem, REGION_BYTES, MADV_HUGEPAGE);
    for (size_t i = 0; i < REGION_BYTES; i += PAGE)
        mem[i] = 0xff;
    unsigned long total = 0;
    unsigned sink = 0;
    for (size_t row = ROW_STRIDE; row + 2 * ROW_STRIDE < REGION_BYTES; row += 3 * ROW_STRIDE) {
        volatile uint64_t *above = (volatile uint64_t *)(mem + row - ROW_STRIDE);
        volatile uint64_t *below = (volatile uint64_t *)(mem + row + ROW_STRIDE);
        sink += hammer(above, below, rounds);
        total += check(mem + row, ROW_STRIDE, 0xff);
    }
    printf("flips=%lu sink=%u\n", total, sink);
    munmap(mem, REGION_BYTES);
    return 0;
}
