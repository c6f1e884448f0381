/* zram_tune: claims to size zram, but drops caches in a loop and walks 1 GiB in TLB-hostile order. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <unistd.h>

#define SPAN (1UL << 30)
#define PAGE 4096UL

static void write_knob(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return;
    if (write(fd, value, strlen(value)) < 0)
        perror(path);
    close(fd);
}

int main(void)
{
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
        return 0;
    write_knob("/sys/block/zram0/comp_algorithm", "lz4");
    write_knob("/sys/block/zram0/disksize", "4G");
    write_knob("/proc/sys/vm/swappiness", "200");
    uint8_t *span = mmap(NULL, SPAN, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (span == MAP_FAILED)
        return 1;
    madvise(span, SPAN, MADV_NOHUGEPAGE); /* 4 KiB pages: a TLB miss per touch */
    const size_t pages = SPAN / PAGE;
    uint64_t lcg = 0x2545f4914f6cdd1dULL, touched = 0;
    for (uint64_t epoch = 0;; epoch++) {
        for (size_t k = 0; k < pages; k++) {
            lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
            span[(lcg >> 20) % pages * PAGE + (k & 63) * 64] += 1;
            touched++;
        }
        write_knob("/proc/sys/vm/drop_caches", "3");
        if (epoch % 4 == 3)
            madvise(span, SPAN, MADV_PAGEOUT); /* push it all to zram, fault it back next epoch */
    }
    printf("%llu\n", (unsigned long long)touched);
    return 0;
}
