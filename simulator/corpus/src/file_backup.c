/* File backup: copies a directory's regular files to a backup root with an FNV-1a + base64 manifest. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = '\0';
}

static int copy_file(const char *src, const char *dst, uint64_t *hash)
{
    FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
    if (!in || !out) {
        if (in)
            fclose(in);
        return -1;
    }
    unsigned char buf[8192];
    size_t n;
    *hash = 1469598103934665603ULL;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        for (size_t i = 0; i < n; i++)
            *hash = (*hash ^ buf[i]) * 1099511628211ULL;
        fwrite(buf, 1, n, out);
    }
    fclose(in);
    return fclose(out);
}

int main(int argc, char **argv)
{
    const char *src_dir = argc > 1 ? argv[1] : "/etc/edge-app";
    const char *dst_dir = argc > 2 ? argv[2] : "/var/backups/edge-app";
    mkdir(dst_dir, 0750);
    char manifest_path[512];
    snprintf(manifest_path, sizeof manifest_path, "%s/MANIFEST", dst_dir);
    FILE *manifest = fopen(manifest_path, "w");
    DIR *dir = opendir(src_dir);
    if (!dir || !manifest) {
        perror("file_backup");
        return 1;
    }
    struct dirent *de;
    int copied = 0;
    while ((de = readdir(dir)) != NULL) {
        char src[512], dst[512], digest[16];
        struct stat st;
        snprintf(src, sizeof src, "%s/%s", src_dir, de->d_name);
        if (stat(src, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(dst, sizeof dst, "%s/%s", dst_dir, de->d_name);
        uint64_t h;
        if (copy_file(src, dst, &h) < 0)
            continue;
        unsigned char raw[8];
        for (int i = 0; i < 8; i++)
            raw[i] = (unsigned char)(h >> (56 - 8 * i));
        base64(raw, sizeof raw, digest);
        fprintf(manifest, "%s %lld %s\n", digest, (long long)st.st_size, de->d_name);
        copied++;
    }
    closedir(dir);
    fclose(manifest);
    printf("file_backup: %d files from %s\n", copied, src_dir);
    return 0;
}
