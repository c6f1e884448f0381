/* Config parser: reads an INI file, validates known keys, prints the effective configuration. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 64

struct entry {
    char section[32];
    char key[32];
    char value[96];
};

static struct entry entries[MAX_ENTRIES];
static int n_entries;

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int parse(FILE *f)
{
    char line[256], section[32] = "global";
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close) {
                fprintf(stderr, "config: line %d: unterminated section\n", lineno);
                return -1;
            }
            *close = '\0';
            snprintf(section, sizeof section, "%s", trim(s + 1));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq || n_entries == MAX_ENTRIES) {
            fprintf(stderr, "config: line %d: expected key = value\n", lineno);
            return -1;
        }
        *eq = '\0';
        struct entry *e = &entries[n_entries++];
        snprintf(e->section, sizeof e->section, "%s", section);
        snprintf(e->key, sizeof e->key, "%s", trim(s));
        snprintf(e->value, sizeof e->value, "%s", trim(eq + 1));
    }
    return 0;
}

static const char *lookup(const char *section, const char *key, const char *fallback)
{
    for (int i = 0; i < n_entries; i++)
        if (!strcmp(entries[i].section, section) && !strcmp(entries[i].key, key))
            return entries[i].value;
    return fallback;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : getenv("APP_CONFIG");
    if (!path)
        path = "/etc/edge-app/app.ini";
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    int rc = parse(f);
    fclose(f);
    if (rc < 0)
        return 1;
    long rate = strtol(lookup("sensors", "rate_hz", "10"), NULL, 10);
    if (rate <= 0 || rate > 1000) {
        fprintf(stderr, "config: sensors.rate_hz out of range: %ld\n", rate);
        return 1;
    }
    printf("model=%s\n", lookup("inference", "model", "/opt/models/detector.engine"));
    printf("power_mode=%s\n", lookup("device", "power_mode", "MAXN"));
    printf("rate_hz=%ld\n", rate);
    printf("entries=%d\n", n_entries);
    return 0;
}
