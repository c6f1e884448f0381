/* GPIO controller: drives status LEDs and a fan-enable line through the gpiochip character device. */
#include <fcntl.h>
#include <linux/gpio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct blinker {
    int fd;
    unsigned period_ms;
    int cycles;
};

static void set_line(int fd, unsigned char value)
{
    struct gpiohandle_data data;
    memset(&data, 0, sizeof data);
    data.values[0] = value;
    if (ioctl(fd, GPIOHANDLE_SET_LINE_VALUES_IOCTL, &data) < 0)
        perror("gpio: set");
}

static void *blink(void *arg)
{
    struct blinker *b = arg;
    for (int i = 0; i < b->cycles; i++) {
        set_line(b->fd, (unsigned char)(i & 1));
        usleep(b->period_ms * 1000u);
    }
    return NULL;
}

static int request_output(int chip, unsigned line, const char *label)
{
    struct gpiohandle_request req;
    memset(&req, 0, sizeof req);
    req.lineoffsets[0] = line;
    req.lines = 1;
    req.flags = GPIOHANDLE_REQUEST_OUTPUT;
    snprintf(req.consumer_label, sizeof req.consumer_label, "%s", label);
    if (ioctl(chip, GPIO_GET_LINEHANDLE_IOCTL, &req) < 0)
        return -1;
    return req.fd;
}

int main(int argc, char **argv)
{
    const char *chip_path = argc > 1 ? argv[1] : "/dev/gpiochip0";
    int chip = open(chip_path, O_RDWR);
    if (chip < 0) {
        perror(chip_path);
        return 1;
    }
    struct gpiochip_info info;
    if (ioctl(chip, GPIO_GET_CHIPINFO_IOCTL, &info) == 0)
        printf("gpio: %s (%s), %u lines\n", info.name, info.label, info.lines);
    int led_ok = request_output(chip, 12, "status-led");
    int led_err = request_output(chip, 13, "error-led");
    int fan_en = request_output(chip, 20, "fan-enable");
    if (led_ok < 0 || led_err < 0 || fan_en < 0) {
        perror("gpio: request");
        return 1;
    }
    set_line(fan_en, 1);
    struct blinker a = {led_ok, 500, 40}, b = {led_err, 125, 160};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, blink, &a);
    pthread_create(&tb, NULL, blink, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    set_line(fan_en, 0);
    close(led_ok);
    close(led_err);
    close(fan_en);
    close(chip);
    return 0;
}
