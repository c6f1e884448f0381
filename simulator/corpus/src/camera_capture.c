/* Camera capture: V4L2 streaming from /dev/video0 into mmap'ed buffers, saving every Nth frame. */
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define N_BUFS 4

static int xioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do
        r = ioctl(fd, req, arg);
    while (r < 0 && errno == EINTR);
    return r;
}

int main(int argc, char **argv)
{
    const char *dev = argc > 1 ? argv[1] : "/dev/video0";
    int fd = open(dev, O_RDWR);
    if (fd < 0) {
        perror(dev);
        return 1;
    }
    struct v4l2_capability cap;
    if (xioctl(fd, VIDIOC_QUERYCAP, &cap) < 0 || !(cap.capabilities & V4L2_CAP_STREAMING)) {
        fprintf(stderr, "%s: no streaming support\n", dev);
        return 1;
    }
    struct v4l2_format fmt = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
    fmt.fmt.pix.width = 1280;
    fmt.fmt.pix.height = 720;
    fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_YUYV;
    xioctl(fd, VIDIOC_S_FMT, &fmt);

    struct v4l2_requestbuffers req = {.count = N_BUFS, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
                                      .memory = V4L2_MEMORY_MMAP};
    xioctl(fd, VIDIOC_REQBUFS, &req);
    void *bufs[N_BUFS];
    size_t lens[N_BUFS];
    for (unsigned i = 0; i < req.count && i < N_BUFS; i++) {
        struct v4l2_buffer b = {.type = req.type, .memory = V4L2_MEMORY_MMAP, .index = i};
        xioctl(fd, VIDIOC_QUERYBUF, &b);
        lens[i] = b.length;
        bufs[i] = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, b.m.offset);
        xioctl(fd, VIDIOC_QBUF, &b);
    }
    int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    xioctl(fd, VIDIOC_STREAMON, &type);
    for (int frame = 0; frame < 300; frame++) {
        struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
        if (xioctl(fd, VIDIOC_DQBUF, &b) < 0)
            break;
        if (frame % 30 == 0) {
            char name[64];
            snprintf(name, sizeof name, "/tmp/frame_%04d.yuv", frame);
            FILE *out = fopen(name, "wb");
            if (out) {
                fwrite(bufs[b.index], 1, b.bytesused, out);
                fclose(out);
            }
        }
        xioctl(fd, VIDIOC_QBUF, &b);
    }
    xioctl(fd, VIDIOC_STREAMOFF, &type);
    for (unsigned i = 0; i < req.count && i < N_BUFS; i++)
        munmap(bufs[i], lens[i]);
    close(fd);
    return 0;
}
