/* Sensor logging daemon: samples thermal zones and rail voltages, appends CSV lines to a log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ZONES 8
#define LOG_PATH "/var/log/sensor_logger.csv"

static int read_millis(const char *path, long *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%ld", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

static void rotate_if_large(const char *path, long max_bytes)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    if (size > max_bytes) {
        char old[256];
        snprintf(old, sizeof old, "%s.1", path);
        rename(path, old);
    }
}

int main(int argc, char **argv)
{
    int period_ms = argc > 1 ? atoi(argv[1]) : 1000;
    int samples = argc > 2 ? atoi(argv[2]) : 60;
    char path[128];
    long values[MAX_ZONES];

    for (int s = 0; s < samples; s++) {
        rotate_if_large(LOG_PATH, 4L << 20);
        FILE *log = fopen(LOG_PATH, "a");
        if (!log) {
            perror("sensor_logger: open log");
            return 1;
        }
        int n = 0;
        for (int z = 0; z < MAX_ZONES; z++) {
            snprintf(path, sizeof path, "/sys/class/thermal/thermal_zone%d/temp", z);
            if (read_millis(path, &values[n]) == 0)
                n++;
        }
        long vin = 0;
        read_millis("/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon0/in1_input", &vin);
        fprintf(log, "%ld,%ld", (long)time(NULL), vin);
        for (int i = 0; i < n; i++)
            fprintf(log, ",%.1f", values[i] / 1000.0);
        fputc('\n', log);
        fclose(log);
        struct timespec ts = {period_ms / 1000, (period_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}
