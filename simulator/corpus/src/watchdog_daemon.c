/* Watchdog daemon: pets /dev/watchdog while the system is healthy (load, memory, own RSS). */
#include <fcntl.h>
#include <linux/watchdog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static long status_field(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    long value = -1;
    size_t len = strlen(name);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, len) && line[len] == ':') {
            value = strtol(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return value;
}

static int healthy(double max_load, long max_rss_kb)
{
    double load = 0.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = 0.0;
        fclose(f);
    }
    long rss = status_field("VmRSS");
    return load < max_load && rss >= 0 && rss < max_rss_kb;
}

int main(int argc, char **argv)
{
    int timeout = argc > 1 ? atoi(argv[1]) : 15;
    int fd = open("/dev/watchdog", O_WRONLY);
    if (fd < 0) {
        perror("/dev/watchdog");
        return 1;
    }
    ioctl(fd, WDIOC_SETTIMEOUT, &timeout);
    struct watchdog_info info;
    if (ioctl(fd, WDIOC_GETSUPPORT, &info) == 0)
        printf("watchdog: %s, timeout %ds\n", (const char *)info.identity, timeout);
    for (;;) {
        if (healthy(32.0, 64 * 1024)) {
            int dummy = 0;
            ioctl(fd, WDIOC_KEEPALIVE, &dummy);
        } else {
            fprintf(stderr, "watchdog: unhealthy, letting the timer expire\n");
        }
        sleep((unsigned)(timeout / 3 > 0 ? timeout / 3 : 1));
    }
    if (write(fd, "V", 1) != 1) /* magic close */
        perror("watchdog: close");
    close(fd);
    return 0;
}
