/* Inference server: accepts TCP clients, runs a small dense layer per request in a worker pool. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define N_IN 64
#define N_OUT 10
#define N_WORKERS 4

static float weights[N_OUT][N_IN];
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static int listen_fd = -1;

static void dense(const float *x, float *y)
{
    for (int o = 0; o < N_OUT; o++) {
        float acc = 0.0f;
        for (int i = 0; i < N_IN; i++)
            acc += weights[o][i] * x[i];
        y[o] = acc > 0.0f ? acc : 0.0f;
    }
}

static void serve(int fd)
{
    float x[N_IN], y[N_OUT];
    for (;;) {
        ssize_t got = recv(fd, x, sizeof x, MSG_WAITALL);
        if (got != (ssize_t)sizeof x)
            break;
        dense(x, y);
        if (send(fd, y, sizeof y, 0) != (ssize_t)sizeof y)
            break;
    }
    close(fd);
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&accept_lock);
        int fd = accept(listen_fd, NULL, NULL);
        pthread_mutex_unlock(&accept_lock);
        if (fd < 0)
            continue;
        serve(fd);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8500;
    for (int o = 0; o < N_OUT; o++)
        for (int i = 0; i < N_IN; i++)
            weights[o][i] = (float)((o * 31 + i * 7) % 17) / 17.0f - 0.5f;

    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listen_fd, 16) < 0) {
        perror("bind/listen");
        return 1;
    }
    printf("infer_server: listening on :%d with %d workers\n", port, N_WORKERS);
    pthread_t threads[N_WORKERS];
    for (int t = 0; t < N_WORKERS; t++)
        pthread_create(&threads[t], NULL, worker, NULL);
    for (int t = 0; t < N_WORKERS; t++)
        pthread_join(threads[t], NULL);
    return 0;
}
