/* config_parser: the config DSL (SPEC section 10).
 *
 * The text is copied once and cut into lines in place. Each line is a comment, a
 * [section] or key=value; a table of keys says where each key belongs, whether it may
 * repeat and how its value is read. Layers are only recorded while reading, so
 * input_dim may come after them; the shapes are walked once the whole text is read,
 * and every message still names the line of the layer at fault. */
#include "config_parser.h"
#include "mem.h"
#include "utils.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Caps that keep every size product far from uint64 overflow and refuse configs that
 * could never be allocated: each number, and the input (the layers cap their own sizes,
 * layers.h). */
#define CFG_MAX_NUMBER 1000000000LL
#define CFG_MAX_ELEMS LAYER_MAX_ELEMS
#define CFG_MAX_FILE (1 << 20)

enum { SEC_NONE, SEC_MODEL, SEC_TRAIN, SEC_COUNT };
static const char *const section_names[SEC_COUNT] = {"", "model", "train"};

struct Parser {
    const char *file;
    char *err;
    size_t errlen;
    struct TrainConfig *cfg;
    int section;
    int section_line[SEC_COUNT];
    int key_line[32];      /* first line of each scalar key, by table index */
    int input_line;        /* of input_dim or input_shape */
    int loss_line;
};

static int fail(struct Parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct Parser *p, int line, const char *fmt, ...)
{
    if (!p->err || !p->errlen) return -1;
    int n = snprintf(p->err, p->errlen, "%s:%d: ", p->file, line);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- names with "did you mean" hints ---- */

struct Name {
    const char *name;
    int value;
};

/* The closest name, if it is close enough to be a likely typo (a case-only
 * difference has distance 0: str_edit_distance ignores case). */
static const char *near_name(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    int best_d = 99;
    for (size_t i = 0; i < n; i++) {
        int d = str_edit_distance(word, names[i]);
        if (d < best_d) best_d = d, best = names[i];
    }
    int limit = str_len(best ? best : "") >= 4 ? 2 : 1;
    return best_d <= limit ? best : NULL;
}

/* " (did you mean 'X'?)" or " (expected A, B or C)" into buf. */
static void hint(char *buf, size_t cap, const char *word, const char *const *names, size_t n)
{
    const char *near = near_name(word, names, n);
    if (near) {
        snprintf(buf, cap, " (did you mean '%s'?)", near);
        return;
    }
    size_t k = str_copy(buf, " (expected ", cap);
    for (size_t i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", names[i], i + 2 < n ? ", " : i + 1 < n ? " or " : ")");
}

static int lookup(struct Parser *p, int line, const char *what, const char *word, const struct Name *tab,
                  size_t n, int *out)
{
    const char *names[8] = {0};
    for (size_t i = 0; i < n; i++) {
        if (!str_cmp(word, tab[i].name)) {
            *out = tab[i].value;
            return 0;
        }
        names[i] = tab[i].name;
    }
    char h[128];
    hint(h, sizeof h, word, names, n);
    return fail(p, line, "unknown %s '%s'%s", what, word, h);
}

#define LOOKUP(p, line, what, word, tab, out) lookup(p, line, what, word, tab, sizeof tab / sizeof *tab, out)

static const struct Name optimizers[] = {{"Adam", OPT_ADAM}, {"SGD", OPT_SGD}};
static const struct Name losses[] = {{"CrossEntropy", LOSS_CROSS_ENTROPY}, {"MSE", LOSS_MSE}};
static const struct Name dtypes[] = {{"float32", DT_FLOAT32}, {"float64", DT_FLOAT64}};
static const struct Name norms[] = {{"none", NORM_NONE}, {"minmax", NORM_MINMAX}, {"standard", NORM_STANDARD}};
static const struct Name schedules[] = {{"constant", LR_CONSTANT}, {"cosine", LR_COSINE}};

/* ---- numbers ---- */

/* A whole number in [lo, CFG_MAX_NUMBER] (seed: the whole int64 range above lo). */
static int parse_count(struct Parser *p, int line, const char *what, const char *s, int64_t lo, int64_t hi,
                       uint64_t *out)
{
    int64_t v;
    int rc = str_to_int(s, &v);
    double d;
    if (rc == STR_JUNK && str_to_float(s, &d) == STR_OK) { /* 1e6 is fine, 2.5 is not */
        if (d < -9e18 || d > 9e18 || d != (double)(int64_t)d)
            return fail(p, line, "%s: '%s' is not a whole number", what, s);
        v = (int64_t)d;
        rc = STR_OK;
    }
    if (rc == STR_RANGE || (rc == STR_OK && v > hi))
        return fail(p, line, "%s: %s is too large (at most %lld)", what, s, (long long)hi);
    if (rc != STR_OK) return fail(p, line, "%s: '%s' is not a number", what, s);
    if (v < lo) return fail(p, line, "%s must be at least %lld, got %s", what, (long long)lo, s);
    *out = (uint64_t)v;
    return 0;
}

/* A finite number in (0, inf) when unit == 0, in [0, 1) when unit == 1. */
static int parse_real(struct Parser *p, int line, const char *what, const char *s, int unit, double *out)
{
    double v;
    int rc = str_to_float(s, &v);
    if (rc == STR_EMPTY) return fail(p, line, "%s: '%s' is not a number", what, s);
    if (rc != STR_OK) return fail(p, line, "%s: '%s': %s", what, s, str_error(rc));
    if (!unit && !(v > 0)) return fail(p, line, "%s must be greater than 0, got %s", what, s);
    if (unit && !(v >= 0 && v < 1)) return fail(p, line, "%s must be in [0, 1), got %s", what, s);
    *out = v;
    return 0;
}

/* Splits a comma list in place into at most max trimmed fields; returns the count
 * (max + 1 means "more than max"). */
static int split_commas(char *s, char **fields, int max)
{
    int n = 0;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma) *comma = 0;
        if (n == max) return max + 1;
        fields[n++] = str_trim(s);
        if (!comma) return n;
        s = comma + 1;
    }
}

/* ---- key handlers ---- */

static int key_input_dim(struct Parser *p, int line, char *v)
{
    struct TrainConfig *c = p->cfg;
    if (parse_count(p, line, "input_dim", v, 1, CFG_MAX_NUMBER, &c->input_shape[0])) return -1;
    c->input_ndim = 1;
    c->input_dim = c->input_shape[0];
    return 0;
}

static int key_input_shape(struct Parser *p, int line, char *v)
{
    static const char *const what[3] = {"input_shape C", "input_shape H", "input_shape W"};
    struct TrainConfig *c = p->cfg;
    char *f[3];
    if (split_commas(v, f, 3) != 3) return fail(p, line, "input_shape takes 3 numbers: C,H,W");
    uint64_t n = 1;
    for (int i = 0; i < 3; i++) {
        if (parse_count(p, line, what[i], f[i], 1, CFG_MAX_NUMBER, &c->input_shape[i])) return -1;
        if (__builtin_mul_overflow(n, c->input_shape[i], &n) || n > CFG_MAX_ELEMS)
            return fail(p, line, "input_shape is too large (more than %llu values)", CFG_MAX_ELEMS);
    }
    c->input_ndim = 3;
    c->input_dim = n;
    return 0;
}

static struct LayerSpec *new_layer(struct Parser *p, int line, uint32_t kind)
{
    struct TrainConfig *c = p->cfg;
    if (c->n_layers == CONFIG_MAX_LAYERS) {
        fail(p, line, "too many layers (at most %d, activations included)", CONFIG_MAX_LAYERS);
        return NULL;
    }
    struct LayerSpec *l = &c->layers[c->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->line = line;
    return l;
}

/* The kind named word among the rows given as `activation=` (act) or `layer=`. */
static int find_kind(struct Parser *p, int line, const char *what, const char *word, int act, uint32_t *kind)
{
    const char *names[MOD_COUNT];
    size_t n = 0;
    for (uint32_t k = 0; k < MOD_COUNT; k++) {
        const struct LayerType *lt = layer_type(k);
        if (lt->activation != act) continue;
        if (!str_cmp(word, lt->name)) {
            *kind = k;
            return 0;
        }
        names[n++] = lt->name;
    }
    char h[256];
    hint(h, sizeof h, word, names, n);
    return fail(p, line, "unknown %s '%s'%s", what, word, h);
}

/* layer=Name,args...: the arguments as the row lists them, each read as its type says
 * (a whole number of at least its minimum, or a real in [0, 1)); trailing arguments with
 * a default may be left out. */
static int key_layer(struct Parser *p, int line, char *v)
{
    char *f[LAYER_MAX_ARGS + 2];
    int n = split_commas(v, f, LAYER_MAX_ARGS + 1);
    uint32_t kind;
    if (find_kind(p, line, "layer type", f[0], 0, &kind)) return -1;
    const struct LayerType *lt = layer_type(kind);
    uint32_t required = 0;
    while (required < lt->n_args && !lt->args[required].default_to) required++;
    if (n - 1 < (int)required || n - 1 > (int)lt->n_args) {
        char names[128];
        size_t k = 0;
        for (uint32_t i = 0; i < lt->n_args && k < sizeof names; i++)
            k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? "," : "", lt->args[i].name);
        if (required < lt->n_args)
            return fail(p, line, "%s takes %u to %u numbers: %s", lt->name, required, lt->n_args, names);
        return fail(p, line, "%s takes %u number%s: %s", lt->name, lt->n_args, lt->n_args == 1 ? "" : "s", names);
    }
    struct LayerSpec *l = new_layer(p, line, kind);
    if (!l) return -1;
    for (uint32_t i = 0; i < lt->n_args; i++) {
        const struct LayerArgDef *a = &lt->args[i];
        char what[48];
        snprintf(what, sizeof what, "%s %s", lt->name, a->name);
        if (i + 1 >= (uint32_t)n) l->args.v[i] = l->args.v[a->default_to - 1];
        else if (a->type == LAYER_ARG_REAL_UNIT) {
            if (parse_real(p, line, what, f[i + 1], 1, &l->args.r[i])) return -1;
        } else if (parse_count(p, line, what, f[i + 1], (int64_t)a->min, CFG_MAX_NUMBER, &l->args.v[i]))
            return -1;
    }
    return 0;
}

static int key_activation(struct Parser *p, int line, char *v)
{
    uint32_t kind;
    if (find_kind(p, line, "activation", v, 1, &kind)) return -1;
    return new_layer(p, line, kind) ? 0 : -1;
}

static int key_dtype(struct Parser *p, int line, char *v)
{
    int d = 0;
    if (LOOKUP(p, line, "dtype", v, dtypes, &d)) return -1;
    p->cfg->dtype = (uint32_t)d;
    return 0;
}

static int key_optimizer(struct Parser *p, int line, char *v)
{
    if (LOOKUP(p, line, "optimizer", v, optimizers, &p->cfg->optimizer)) return -1;
    str_copy(p->cfg->optimizer_name, v, sizeof p->cfg->optimizer_name);
    return 0;
}

static int key_loss(struct Parser *p, int line, char *v)
{
    if (LOOKUP(p, line, "loss", v, losses, &p->cfg->loss)) return -1;
    str_copy(p->cfg->loss_name, v, sizeof p->cfg->loss_name);
    p->loss_line = line;
    return 0;
}

static int key_normalize(struct Parser *p, int line, char *v)
{
    return LOOKUP(p, line, "normalize value", v, norms, &p->cfg->normalize);
}

static int key_lr_schedule(struct Parser *p, int line, char *v)
{
    return LOOKUP(p, line, "lr_schedule", v, schedules, &p->cfg->lr_schedule);
}

static int key_shuffle(struct Parser *p, int line, char *v)
{
    if (str_cmp(v, "0") && str_cmp(v, "1")) return fail(p, line, "shuffle must be 0 or 1, got '%s'", v);
    p->cfg->shuffle = v[0] == '1';
    return 0;
}

static int key_lr(struct Parser *p, int line, char *v) { return parse_real(p, line, "lr", v, 0, &p->cfg->lr); }
static int key_eps(struct Parser *p, int line, char *v) { return parse_real(p, line, "eps", v, 0, &p->cfg->eps); }
static int key_momentum(struct Parser *p, int line, char *v)
{
    return parse_real(p, line, "momentum", v, 1, &p->cfg->momentum);
}
static int key_beta1(struct Parser *p, int line, char *v) { return parse_real(p, line, "beta1", v, 1, &p->cfg->beta1); }
static int key_beta2(struct Parser *p, int line, char *v) { return parse_real(p, line, "beta2", v, 1, &p->cfg->beta2); }
static int key_epochs(struct Parser *p, int line, char *v)
{
    return parse_count(p, line, "epochs", v, 1, CFG_MAX_NUMBER, &p->cfg->epochs);
}
static int key_batch_size(struct Parser *p, int line, char *v)
{
    return parse_count(p, line, "batch_size", v, 1, CFG_MAX_NUMBER, &p->cfg->batch_size);
}
static int key_seed(struct Parser *p, int line, char *v)
{
    return parse_count(p, line, "seed", v, 0, INT64_MAX, &p->cfg->seed);
}
static int key_patience(struct Parser *p, int line, char *v)
{
    return parse_count(p, line, "patience", v, 0, CFG_MAX_NUMBER, &p->cfg->patience);
}
/* A fraction strictly between 0 and 1: both parts must keep samples. */
static int key_val_split(struct Parser *p, int line, char *v)
{
    double f;
    if (parse_real(p, line, "val_split", v, 0, &f)) return -1;
    if (!(f < 1)) return fail(p, line, "val_split must be between 0 and 1 (the fraction held out), got %s", v);
    p->cfg->val_split = f;
    return 0;
}

struct KeyDef {
    const char *name;
    int section;
    int repeats;
    int (*fn)(struct Parser *, int, char *);
};

static const struct KeyDef keys[] = {
    {"input_dim", SEC_MODEL, 0, key_input_dim},   {"input_shape", SEC_MODEL, 0, key_input_shape},
    {"layer", SEC_MODEL, 1, key_layer},           {"activation", SEC_MODEL, 1, key_activation},
    {"dtype", SEC_MODEL, 0, key_dtype},           {"optimizer", SEC_TRAIN, 0, key_optimizer},
    {"lr", SEC_TRAIN, 0, key_lr},                 {"epochs", SEC_TRAIN, 0, key_epochs},
    {"batch_size", SEC_TRAIN, 0, key_batch_size}, {"loss", SEC_TRAIN, 0, key_loss},
    {"momentum", SEC_TRAIN, 0, key_momentum},     {"beta1", SEC_TRAIN, 0, key_beta1},
    {"beta2", SEC_TRAIN, 0, key_beta2},           {"eps", SEC_TRAIN, 0, key_eps},
    {"seed", SEC_TRAIN, 0, key_seed},             {"shuffle", SEC_TRAIN, 0, key_shuffle},
    {"normalize", SEC_TRAIN, 0, key_normalize},   {"lr_schedule", SEC_TRAIN, 0, key_lr_schedule},
    {"val_split", SEC_TRAIN, 0, key_val_split},   {"patience", SEC_TRAIN, 0, key_patience},
};
#define N_KEYS (sizeof keys / sizeof *keys)
_Static_assert(N_KEYS <= sizeof ((struct Parser *)0)->key_line / sizeof(int), "key_line too small");

/* ---- lines ---- */

static int unknown_key(struct Parser *p, int line, const char *k)
{
    const char *names[N_KEYS] = {0};
    size_t n = 0;
    for (size_t i = 0; i < N_KEYS; i++)
        if (keys[i].section == p->section) names[n++] = keys[i].name;
    const char *near = near_name(k, names, n);
    if (near) return fail(p, line, "unknown key '%s' in [%s] (did you mean '%s'?)", k, section_names[p->section], near);
    return fail(p, line, "unknown key '%s' in [%s]", k, section_names[p->section]);
}

/* The first line of a key that may be given once; input_dim and input_shape count as one. */
static int repeated_key(struct Parser *p, int line, size_t ki)
{
    int *first = str_cmp(keys[ki].name, "input_dim") && str_cmp(keys[ki].name, "input_shape")
                     ? &p->key_line[ki] : &p->input_line;
    if (*first) {
        if (first == &p->input_line && !p->key_line[ki])
            return fail(p, line, "%s given but the input was already set on line %d "
                        "(give input_dim or input_shape, not both)", keys[ki].name, *first);
        return fail(p, line, "%s given twice (first on line %d)", keys[ki].name, *first);
    }
    *first = p->key_line[ki] = line;
    return 0;
}

static int key_value(struct Parser *p, int line, char *s)
{
    char *eq = strchr(s, '=');
    if (!eq) return fail(p, line, "expected key=value, [section] or a # comment, got '%s'", s);
    *eq = 0;
    char *k = str_trim(s), *v = str_trim(eq + 1);
    if (!*k) return fail(p, line, "missing key before '='");
    size_t ki = 0;
    while (ki < N_KEYS && str_cmp(keys[ki].name, k)) ki++;
    if (p->section == SEC_NONE) {
        if (ki < N_KEYS)
            return fail(p, line, "key '%s' before any section (put it under [%s])", k, section_names[keys[ki].section]);
        return fail(p, line, "key '%s' before any section", k);
    }
    if (ki == N_KEYS) return unknown_key(p, line, k);
    if (keys[ki].section != p->section)
        return fail(p, line, "key '%s' belongs in [%s], not [%s]", k, section_names[keys[ki].section],
                    section_names[p->section]);
    if (!*v) return fail(p, line, "%s: missing value", k);
    if (!keys[ki].repeats && repeated_key(p, line, ki)) return -1;
    return keys[ki].fn(p, line, v);
}

static int section(struct Parser *p, int line, char *s)
{
    char *close = strchr(s, ']');
    if (!close) return fail(p, line, "missing ']' in section header");
    *close = 0;
    if (*str_trim(close + 1)) return fail(p, line, "unexpected text after ']'");
    char *name = str_trim(s + 1);
    int sec = SEC_NONE;
    for (int i = 1; i < SEC_COUNT; i++)
        if (!str_cmp(name, section_names[i])) sec = i;
    if (sec == SEC_NONE) {
        const char *near = near_name(name, section_names + 1, SEC_COUNT - 1);
        if (near) return fail(p, line, "unknown section [%s] (did you mean [%s]?)", name, near);
        return fail(p, line, "unknown section [%s] (expected [model] or [train])", name);
    }
    if (p->section_line[sec])
        return fail(p, line, "section [%s] given twice (first on line %d)", name, p->section_line[sec]);
    p->section_line[sec] = line;
    p->section = sec;
    return 0;
}

static int parse_lines(struct Parser *p, char *s, size_t len)
{
    char *end = s + len;
    if (len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3;
    for (int line = 1; s < end; line++) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *next = nl ? nl + 1 : end;
        *(nl ? nl : end) = 0;
        if (str_len(s) != (size_t)((nl ? nl : end) - s)) return fail(p, line, "NUL byte in a text file");
        char *hash = strchr(s, '#');
        if (hash) *hash = 0;
        char *t = str_trim(s);
        int rc = !*t ? 0 : *t == '[' ? section(p, line, t) : key_value(p, line, t);
        if (rc) return rc;
        s = next;
    }
    return 0;
}

/* ---- shapes ---- */

/* Each layer's shape rule (its table row) on what the layer before it outputs. */
static int walk_shapes(struct Parser *p)
{
    struct TrainConfig *c = p->cfg;
    struct LayerShape in = {c->input_ndim, {c->input_shape[0], c->input_shape[1], c->input_shape[2]}};
    for (uint32_t i = 0; i < c->n_layers; i++) {
        struct LayerSpec *l = &c->layers[i];
        char msg[512];
        if (layer_type(l->kind)->shape(l, &in, i == 0, &l->out, &l->n_params, msg, sizeof msg))
            return fail(p, l->line, "%s", msg);
        in = l->out;
    }
    return 0;
}

/* Checks that need the whole text: an input, layers, shapes, and an output the loss can use. */
static int finish(struct Parser *p)
{
    struct TrainConfig *c = p->cfg;
    int model_line = p->section_line[SEC_MODEL];
    if (!model_line) return fail(p, 1, "no [model] section");
    if (!c->input_ndim) return fail(p, model_line, "[model] needs input_dim=N or input_shape=C,H,W");
    uint32_t layers = 0;
    for (uint32_t i = 0; i < c->n_layers; i++) layers += !layer_type(c->layers[i].kind)->activation;
    if (!layers) return fail(p, model_line, "[model] has no layers (add layer=Linear,in,out)");
    if (walk_shapes(p)) return -1;
    const struct LayerSpec *last = &c->layers[c->n_layers - 1];
    if (last->out.ndim == 3) {
        char sh[80];
        layer_shape_note(sh, sizeof sh, &last->out);
        return fail(p, last->line, "the network ends with a C,H,W output%s: end it with a Linear layer", sh);
    }
    c->output_dim = last->out.d[0];
    if (c->loss == LOSS_CROSS_ENTROPY && c->output_dim < 2)
        return fail(p, p->loss_line ? p->loss_line : last->line,
                    "loss=CrossEntropy needs at least 2 outputs but the network has %llu (use loss=MSE for regression)",
                    (unsigned long long)c->output_dim);
    return 0;
}

/* ---- public ---- */

void config_defaults(struct TrainConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    str_copy(cfg->optimizer_name, "Adam", sizeof cfg->optimizer_name);
    cfg->optimizer = OPT_ADAM;
    cfg->lr = 0.001;
    cfg->epochs = 10;
    cfg->batch_size = 64;
    str_copy(cfg->loss_name, "CrossEntropy", sizeof cfg->loss_name);
    cfg->loss = LOSS_CROSS_ENTROPY;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->seed = 42;
    cfg->shuffle = 1;
    cfg->normalize = NORM_NONE;
    cfg->lr_schedule = LR_CONSTANT;
    cfg->dtype = DT_FLOAT32;
}

int config_parse_text(const char *text, size_t len, const char *filename, struct TrainConfig *cfg, char *err,
                      size_t errlen)
{
    config_defaults(cfg);
    struct Parser p = {.file = filename ? filename : "config", .err = err, .errlen = errlen, .cfg = cfg};
    char *buf = mem_alloc(len + 1);
    memcpy(buf, text, len);
    buf[len] = 0;
    int rc = parse_lines(&p, buf, len);
    if (!rc) rc = finish(&p);
    mem_free(buf);
    return rc;
}

char *config_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    /* Grown as the text comes (up to one byte past the cap, to tell a file at the cap
     * from a longer one): a config of a few hundred bytes takes no megabyte. */
    size_t cap = 4096, n = 0;
    char *buf = mem_alloc(cap + 1);
    for (size_t k; (k = fread(buf + n, 1, cap - n, f)) > 0 && (n += k) == cap && cap <= CFG_MAX_FILE;) {
        cap = cap * 2 > CFG_MAX_FILE ? CFG_MAX_FILE + 1 : cap * 2;
        buf = mem_realloc(buf, cap + 1);
    }
    int bad = ferror(f), e = errno;
    fclose(f);
    if (bad || n > CFG_MAX_FILE) {
        if (bad) err_set(err, errlen, "%s: read error: %s", path, strerror(e));
        else err_set(err, errlen, "%s:1: file is larger than %d bytes: is this a config?", path, CFG_MAX_FILE);
        mem_free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ---- comparing two configs ---- */

/* Formats what differs into what and returns 1. */
static int differ(char *what, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int differ(char *what, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (what && cap) vsnprintf(what, cap, fmt, ap);
    va_end(ap);
    return 1;
}

#define DIFF_NUM(key, fmt, T) \
    if (a->key != b->key) return differ(what, cap, "%s: " fmt " against " fmt, #key, (T)a->key, (T)b->key)

/* The shortest form of v that reads back as v (0.003, not 0.0030000000000000001). */
static const char *real_str(char *buf, size_t cap, double v)
{
    for (int digits = 6; digits < 17; digits++) {
        snprintf(buf, cap, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) return buf;
    }
    snprintf(buf, cap, "%.17g", v);
    return buf;
}

#define DIFF_REAL(key)                                                                               \
    if (a->key != b->key) {                                                                          \
        char ra[32], rb[32];                                                                         \
        return differ(what, cap, "%s: %s against %s", #key, real_str(ra, sizeof ra, a->key),         \
                      real_str(rb, sizeof rb, b->key));                                              \
    }

/* "Conv2d,1,8,3,3,1,1": a layer as the config gives it. */
static void layer_desc(char *buf, size_t cap, const struct LayerSpec *l)
{
    const struct LayerType *lt = layer_type(l->kind);
    size_t k = (size_t)snprintf(buf, cap, "%s", lt->name);
    for (uint32_t i = 0; i < lt->n_args && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, ",%llu", (unsigned long long)l->args.v[i]);
}

static int diff_network(const struct TrainConfig *a, const struct TrainConfig *b, char *what, size_t cap)
{
    char la[128] = "(none)", lb[128] = "(none)";
    if (a->dtype != b->dtype) return differ(what, cap, "dtype: %s against %s", dtype_name(a->dtype), dtype_name(b->dtype));
    if (a->input_ndim != b->input_ndim || memcmp(a->input_shape, b->input_shape, sizeof a->input_shape)) {
        struct LayerShape sa = {a->input_ndim, {a->input_shape[0], a->input_shape[1], a->input_shape[2]}};
        struct LayerShape sb = {b->input_ndim, {b->input_shape[0], b->input_shape[1], b->input_shape[2]}};
        layer_shape_str(la, sizeof la, &sa);
        layer_shape_str(lb, sizeof lb, &sb);
        return differ(what, cap, "%s: %s against %s", a->input_ndim == 3 ? "input_shape" : "input_dim", la, lb);
    }
    uint32_t n = a->n_layers > b->n_layers ? a->n_layers : b->n_layers;
    for (uint32_t i = 0; i < n; i++) {
        str_copy(la, "(none)", sizeof la);
        str_copy(lb, "(none)", sizeof lb);
        if (i < a->n_layers) layer_desc(la, sizeof la, &a->layers[i]);
        if (i < b->n_layers) layer_desc(lb, sizeof lb, &b->layers[i]);
        if (str_cmp(la, lb)) return differ(what, cap, "layer %u (layer= or activation=): %s against %s", i + 1, la, lb);
    }
    return 0;
}

int config_diff(const struct TrainConfig *a, const struct TrainConfig *b, char *what, size_t cap)
{
    if (diff_network(a, b, what, cap)) return 1;
    if (a->optimizer != b->optimizer) return differ(what, cap, "optimizer: %s against %s", a->optimizer_name, b->optimizer_name);
    if (a->loss != b->loss) return differ(what, cap, "loss: %s against %s", a->loss_name, b->loss_name);
    DIFF_REAL(lr)
    DIFF_NUM(epochs, "%llu", unsigned long long);
    DIFF_NUM(batch_size, "%llu", unsigned long long);
    DIFF_REAL(momentum)
    DIFF_REAL(beta1)
    DIFF_REAL(beta2)
    DIFF_REAL(eps)
    DIFF_NUM(seed, "%llu", unsigned long long);
    DIFF_NUM(shuffle, "%d", int);
    if (a->normalize != b->normalize)
        return differ(what, cap, "normalize: %s against %s", norms[a->normalize].name, norms[b->normalize].name);
    if (a->lr_schedule != b->lr_schedule)
        return differ(what, cap, "lr_schedule: %s against %s", schedules[a->lr_schedule].name,
                      schedules[b->lr_schedule].name);
    DIFF_REAL(val_split)
    DIFF_NUM(patience, "%llu", unsigned long long);
    return 0;
}

int config_parse_file(const char *path, struct TrainConfig *cfg, char *err, size_t errlen)
{
    size_t len;
    char *text = config_read_file(path, &len, err, errlen);
    if (!text) return -1;
    int rc = config_parse_text(text, len, path, cfg, err, errlen);
    mem_free(text);
    return rc;
}
