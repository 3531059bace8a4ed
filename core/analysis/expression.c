/* The expression transponder (SPEC §8.6): a recursive-descent compiler to postfix code, and a
 * per-row evaluator with an explicit stack.
 *
 * Null is represented as NaN while evaluating: every operation propagates NaN, and every
 * non-finite intermediate result is turned into NaN, which is exactly the SPEC's "null
 * propagates; a non-finite result is null". Evaluation has no side effects, so evaluating the
 * right operand after a null left one (which the SPEC skips) cannot be observed.
 *
 * Recursion in the parser is bounded (EXPR_MAX_DEPTH); evaluation is iterative. */
#include "analysis_int.h"

#include <math.h>
#include <string.h>

#include "alloc_int.h"
#include "error_int.h"
#include "numfmt_int.h"

#define EXPR_MAX_VARS 26
#define EXPR_MAX_DEPTH 256

enum tok_kind { T_NUM, T_IDENT, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_LPAREN, T_RPAREN, T_COMMA };

typedef struct token {
    int kind;
    size_t pos, len; /* byte range in the trimmed text */
} token;

enum op_kind { OP_NUM, OP_VAR, OP_NEG, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_CALL };
enum func_kind { F_SUM, F_MEAN, F_MIN, F_MAX, F_SQRT };

typedef struct op {
    int kind;
    int arg;     /* OP_VAR: variable index; OP_CALL: function */
    size_t argc; /* OP_CALL: number of arguments */
    double num;  /* OP_NUM: the literal, NaN when it overflows */
} op;

struct trifle_expression {
    trifle__path vars[EXPR_MAX_VARS];
    unsigned char defined[EXPR_MAX_VARS];
    trifle__path response;
    op *code;
    size_t n_code, cap_code;
    size_t max_stack;
};

typedef struct parser {
    const char *text;
    const token *tok;
    size_t n_tok, pos;
    trifle_expression *e;
    trifle_error *err;
    int depth;
    size_t stack; /* evaluation stack depth after the code emitted so far */
} parser;

/* ------------------------------------------------------------------------------------------- */
/* Tokens                                                                                       */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_ident_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int tokenize(token **out, size_t *n_out, const char *text, size_t len, trifle_error *err)
{
    token *tok = NULL, *nt;
    size_t n = 0, cap = 0, i = 0;

    *out = NULL;
    *n_out = 0;
    while (i < len) {
        char c = text[i];
        token t;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
            continue;
        }
        t.pos = i;
        if (is_digit(c)) {
            while (i < len && is_digit(text[i]))
                i++;
            if (i < len && text[i] == '.') {
                i++;
                while (i < len && is_digit(text[i]))
                    i++;
            }
            t.kind = T_NUM;
        } else if (is_ident_start(c)) {
            while (i < len && (is_ident_start(text[i]) || is_digit(text[i])))
                i++;
            t.kind = T_IDENT;
        } else {
            const char *singles = "+-*/(),";
            const char *hit = memchr(singles, c, 7);
            if (c == '\0' || hit == NULL) {
                trifle__free(tok);
                return trifle__error(err, TRIFLE_EINVAL, "invalid token at position %zu", i);
            }
            t.kind = T_PLUS + (int)(hit - singles);
            i++;
        }
        t.len = i - t.pos;
        nt = trifle__array_grow(tok, &cap, n, sizeof(*tok), 16);
        if (nt == NULL) {
            trifle__free(tok);
            return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        }
        tok = nt;
        tok[n++] = t;
    }
    *out = tok;
    *n_out = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Parser                                                                                       */

static int emit(parser *p, int kind, int arg, size_t argc, double num)
{
    trifle_expression *e = p->e;
    op o, *code;

    code = trifle__array_grow(e->code, &e->cap_code, e->n_code, sizeof(*code), 16);
    if (code == NULL)
        return trifle__error(p->err, TRIFLE_ENOMEM, "out of memory");
    e->code = code;
    o.kind = kind;
    o.arg = arg;
    o.argc = argc;
    o.num = num;
    e->code[e->n_code++] = o;
    switch (kind) {
    case OP_NUM:
    case OP_VAR:
        p->stack++;
        break;
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
        p->stack--;
        break;
    case OP_CALL:
        p->stack = p->stack - argc + 1;
        break;
    default:
        break;
    }
    if (p->stack > e->max_stack)
        e->max_stack = p->stack;
    return 0;
}

static const token *peek(const parser *p)
{
    return p->pos < p->n_tok ? &p->tok[p->pos] : NULL;
}

static int peek_is(const parser *p, int kind)
{
    const token *t = peek(p);
    return t != NULL && t->kind == kind;
}

static int unexpected(parser *p, const token *t)
{
    return trifle__error(p->err, TRIFLE_EINVAL, "unexpected token \"%.*s\"", (int)t->len,
                         p->text + t->pos);
}

static int parse_expression(parser *p);
static int parse_factor(parser *p);

static int function_of(const char *name, size_t len)
{
    static const struct {
        const char *name;
        int f;
    } funcs[] = {{"sum", F_SUM}, {"mean", F_MEAN}, {"avg", F_MEAN},
                 {"min", F_MIN}, {"max", F_MAX},   {"sqrt", F_SQRT}};
    size_t i;

    for (i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++)
        if (strlen(funcs[i].name) == len && memcmp(funcs[i].name, name, len) == 0)
            return funcs[i].f;
    return -1;
}

/* IDENT "(" [ expression { "," expression } ] ")", with the IDENT already consumed. */
static int parse_call(parser *p, const token *name)
{
    size_t argc = 0;
    int rc, f;

    p->pos++; /* "(" */
    if (peek_is(p, T_RPAREN)) {
        p->pos++;
    } else {
        for (;;) {
            rc = parse_expression(p);
            if (rc != 0)
                return rc;
            argc++;
            if (!peek_is(p, T_COMMA))
                break;
            p->pos++;
        }
        if (!peek_is(p, T_RPAREN))
            return trifle__error(p->err, TRIFLE_EINVAL, "missing closing parenthesis");
        p->pos++;
    }
    f = function_of(p->text + name->pos, name->len);
    if (f < 0)
        return trifle__error(p->err, TRIFLE_EINVAL, "unknown function %.*s", (int)name->len,
                             p->text + name->pos);
    if (f == F_SQRT && argc != 1)
        return trifle__error(p->err, TRIFLE_EINVAL, "function sqrt expects 1 argument");
    return emit(p, OP_CALL, f, argc, 0);
}

static int parse_factor_inner(parser *p)
{
    const token *t = peek(p);
    double num;
    int rc;

    if (t == NULL)
        return trifle__error(p->err, TRIFLE_EINVAL, "unexpected end of expression");
    switch (t->kind) {
    case T_PLUS: /* unary plus changes nothing */
        p->pos++;
        return parse_factor(p);
    case T_MINUS:
        p->pos++;
        rc = parse_factor(p);
        return rc != 0 ? rc : emit(p, OP_NEG, 0, 0, 0);
    case T_LPAREN:
        p->pos++;
        rc = parse_expression(p);
        if (rc != 0)
            return rc;
        if (!peek_is(p, T_RPAREN))
            return trifle__error(p->err, TRIFLE_EINVAL, "missing closing parenthesis");
        p->pos++;
        return 0;
    case T_NUM:
        p->pos++;
        /* the grammar is checked; failure means the literal overflows: a null value */
        if (trifle__parse_double(p->text + t->pos, t->len, &num) != 0)
            num = NAN;
        return emit(p, OP_NUM, 0, 0, num);
    case T_IDENT:
        p->pos++;
        if (peek_is(p, T_LPAREN))
            return parse_call(p, t);
        if (t->len == 1 && p->text[t->pos] >= 'a' && p->text[t->pos] <= 'z' &&
            p->e->defined[p->text[t->pos] - 'a'])
            return emit(p, OP_VAR, p->text[t->pos] - 'a', 0, 0);
        return trifle__error(p->err, TRIFLE_EINVAL, "unknown variable %.*s", (int)t->len,
                             p->text + t->pos);
    default:
        return unexpected(p, t);
    }
}

/* Every recursion (unary operators, parentheses, call arguments) passes through here, so this is
 * where nesting is bounded. */
static int parse_factor(parser *p)
{
    int rc;

    if (++p->depth > EXPR_MAX_DEPTH)
        return trifle__error(p->err, TRIFLE_EINVAL, "expression is nested too deeply");
    rc = parse_factor_inner(p);
    p->depth--;
    return rc;
}

/* One level of left-associative operators: operands read by operand, joined by the tokens t1
 * (the operation op1) and t2 (op2). */
static int parse_binary(parser *p, int (*operand)(parser *), int t1, int op1, int t2, int op2)
{
    int rc = operand(p);

    while (rc == 0 && (peek_is(p, t1) || peek_is(p, t2))) {
        int kind = peek(p)->kind == t1 ? op1 : op2;
        p->pos++;
        rc = operand(p);
        if (rc == 0)
            rc = emit(p, kind, 0, 0, 0);
    }
    return rc;
}

static int parse_term(parser *p)
{
    return parse_binary(p, parse_factor, T_STAR, OP_MUL, T_SLASH, OP_DIV);
}

static int parse_expression(parser *p)
{
    return parse_binary(p, parse_term, T_PLUS, OP_ADD, T_MINUS, OP_SUB);
}

/* ------------------------------------------------------------------------------------------- */
/* Compile                                                                                      */

void trifle_expression_free(trifle_expression *e)
{
    int i;

    if (e == NULL)
        return;
    for (i = 0; i < EXPR_MAX_VARS; i++)
        trifle__path_free(&e->vars[i]);
    trifle__path_free(&e->response);
    trifle__free(e->code);
    trifle__free(e);
}

int trifle_expression_compile(trifle_expression **out, const char *const *paths, size_t n_paths,
                              const char *expression, const char *response, trifle_error *err)
{
    trifle_expression *e = NULL;
    token *tok = NULL;
    size_t n_tok = 0, i, len;
    const char *text;
    int rc = 0, any = 0;
    parser p;

    *out = NULL;
    /* 1. paths */
    if (n_paths == 0)
        return trifle__error(err, TRIFLE_EINVAL, "at least one path is required");
    if (n_paths > EXPR_MAX_VARS)
        return trifle__error(err, TRIFLE_EINVAL, "too many paths. maximum supported is 26");
    for (i = 0; i < n_paths; i++)
        any |= paths[i] != NULL && trifle__trim(paths[i], &text) > 0;
    if (!any)
        return trifle__error(err, TRIFLE_EINVAL, "at least one path is required");
    /* 2. response */
    if (response == NULL || trifle__trim(response, &text) == 0)
        return trifle__error(err, TRIFLE_EINVAL, "response path is required");
    /* 3. wildcards */
    for (i = 0; i < n_paths; i++)
        if (paths[i] != NULL && strchr(paths[i], '*') != NULL)
            return trifle__error(err, TRIFLE_EINVAL, "wildcard paths are not supported yet");
    if (strchr(response, '*') != NULL)
        return trifle__error(err, TRIFLE_EINVAL, "wildcard paths are not supported yet");

    e = trifle__calloc(1, sizeof(*e));
    if (e == NULL)
        return trifle__error(err, TRIFLE_ENOMEM, "out of memory");
    /* 4. response segments */
    rc = trifle__path_parse(&e->response, response, err);
    if (rc != 0)
        goto done;
    if (e->response.n == 0) {
        rc = trifle__error(err, TRIFLE_EINVAL, "response path is required");
        goto done;
    }
    for (i = 0; i < n_paths; i++) {
        if (paths[i] == NULL || trifle__trim(paths[i], &text) == 0)
            continue; /* a blank entry defines no variable; the letters keep their positions */
        rc = trifle__path_parse(&e->vars[i], paths[i], err);
        if (rc != 0)
            goto done;
        e->defined[i] = 1;
    }
    /* 5. tokens */
    if (expression == NULL || (len = trifle__trim(expression, &text)) == 0) {
        rc = trifle__error(err, TRIFLE_EINVAL, "expression must be text");
        goto done;
    }
    rc = tokenize(&tok, &n_tok, text, len, err);
    if (rc != 0)
        goto done;
    /* 6. parse */
    p = (parser){.text = text, .tok = tok, .n_tok = n_tok, .e = e, .err = err};
    rc = parse_expression(&p);
    if (rc == 0 && p.pos < n_tok)
        rc = unexpected(&p, &tok[p.pos]);
    if (rc != 0)
        goto done;
    *out = e;
    e = NULL;
done:
    trifle__free(tok);
    trifle_expression_free(e);
    return rc;
}

int trifle_expression_validate(const char *const *paths, size_t n_paths, const char *expression,
                               const char *response, trifle_error *err)
{
    trifle_expression *e = NULL;
    int rc = trifle_expression_compile(&e, paths, n_paths, expression, response, err);

    trifle_expression_free(e);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Evaluate and write                                                                           */

static double finite_or_null(double v)
{
    return isfinite(v) ? v : NAN;
}

/* The value of e for one row; NaN means null. stack has e->max_stack entries. */
static double evaluate(const trifle_expression *e, const cJSON *row, double *stack)
{
    size_t sp = 0, i, k;

    for (i = 0; i < e->n_code; i++) {
        const op *o = &e->code[i];
        double l, r, v;
        switch (o->kind) {
        case OP_NUM:
            stack[sp++] = o->num;
            break;
        case OP_VAR:
            if (!trifle__numeric(trifle__fetch(row, &e->vars[o->arg]), &v))
                v = NAN;
            stack[sp++] = v;
            break;
        case OP_NEG:
            stack[sp - 1] = -stack[sp - 1];
            break;
        case OP_CALL: {
            double *args = stack + sp - o->argc, acc = NAN;
            int null = o->argc == 0;
            for (k = 0; k < o->argc && !null; k++)
                null = isnan(args[k]);
            if (!null) {
                acc = args[0];
                for (k = 1; k < o->argc; k++) {
                    if (o->arg == F_MIN)
                        acc = args[k] < acc ? args[k] : acc;
                    else if (o->arg == F_MAX)
                        acc = args[k] > acc ? args[k] : acc;
                    else
                        acc = finite_or_null(acc + args[k]);
                }
                if (o->arg == F_MEAN)
                    acc = finite_or_null(acc / (double)o->argc);
                else if (o->arg == F_SQRT)
                    acc = acc < 0 ? NAN : sqrt(acc);
            }
            sp -= o->argc;
            stack[sp++] = acc;
            break;
        }
        default:
            r = stack[--sp];
            l = stack[sp - 1];
            if (o->kind == OP_ADD)
                v = l + r;
            else if (o->kind == OP_SUB)
                v = l - r;
            else if (o->kind == OP_MUL)
                v = l * r;
            else
                v = r == 0 ? NAN : l / r;
            stack[sp - 1] = finite_or_null(v);
            break;
        }
    }
    return sp == 1 ? stack[0] : NAN;
}

/* Write v (NaN = null) at the response path of *row, which may be replaced (a null row becomes an
 * object). Returns 0, TRIFLE_EINVAL (intermediate is not absent/null/object) or TRIFLE_ENOMEM. */
/* Put item in obj as key, replacing the member of that name (replace: there is one) or adding
 * it. Takes item. Returns 0 or TRIFLE_ENOMEM. */
static int put_member(cJSON *obj, const char *key, cJSON *item, int replace)
{
    if (replace ? cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item)
                : cJSON_AddItemToObject(obj, key, item))
        return 0;
    cJSON_Delete(item);
    return TRIFLE_ENOMEM;
}

static int write_response(cJSON **row, const trifle__path *resp, double v)
{
    cJSON *cur, *value;
    size_t i;

    if (cJSON_IsNull(*row)) {
        cJSON *obj = cJSON_CreateObject();
        if (obj == NULL)
            return TRIFLE_ENOMEM;
        cJSON_Delete(*row);
        *row = obj;
    }
    if (!cJSON_IsObject(*row))
        return TRIFLE_EINVAL;
    cur = *row;
    for (i = 0; i + 1 < resp->n; i++) {
        cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, resp->seg[i]);
        if (next != NULL && !cJSON_IsNull(next) && !cJSON_IsObject(next))
            return TRIFLE_EINVAL;
        if (next == NULL || cJSON_IsNull(next)) {
            cJSON *child = cJSON_CreateObject();
            if (child == NULL)
                return TRIFLE_ENOMEM;
            if (put_member(cur, resp->seg[i], child, next != NULL) != 0)
                return TRIFLE_ENOMEM;
            next = child;
        }
        cur = next;
    }
    value = isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
    if (value == NULL)
        return TRIFLE_ENOMEM;
    return put_member(cur, resp->seg[i], value,
                      cJSON_GetObjectItemCaseSensitive(cur, resp->seg[i]) != NULL);
}

int trifle_expression_apply(trifle_series **out, const trifle_expression *e, const trifle_series *s,
                            trifle_error *err)
{
    trifle_series *res = NULL;
    double *stack = NULL;
    size_t n = s == NULL ? 0 : s->n, i;
    int rc;

    *out = NULL;
    rc = trifle__series_new(&res, n, err);
    if (rc != 0)
        return rc;
    stack = trifle__calloc(e->max_stack ? e->max_stack : 1, sizeof(*stack));
    if (stack == NULL) {
        rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++) {
        double v = evaluate(e, s->rows[i], stack);
        res->at[i] = s->at[i];
        res->rows[i] = s->rows[i] != NULL ? cJSON_Duplicate(s->rows[i], 1) : cJSON_CreateNull();
        if (res->rows[i] == NULL) {
            rc = trifle__error(err, TRIFLE_ENOMEM, "out of memory");
            goto done;
        }
        rc = write_response(&res->rows[i], &e->response, v);
        if (rc == TRIFLE_EINVAL) {
            rc = trifle__error(err, rc, "cannot write to response path %s", e->response.text);
            goto done;
        }
        if (rc != 0) {
            rc = trifle__error(err, rc, "out of memory");
            goto done;
        }
    }
    *out = res;
    res = NULL;
done:
    trifle__free(stack);
    trifle_series_free(res);
    return rc;
}

int trifle_series_transform(trifle_series **out, const trifle_series *s, const char *const *paths,
                            size_t n_paths, const char *expression, const char *response,
                            trifle_error *err)
{
    trifle_expression *e = NULL;
    int rc = trifle_expression_compile(&e, paths, n_paths, expression, response, err);

    *out = NULL;
    if (rc == 0)
        rc = trifle_expression_apply(out, e, s, err);
    trifle_expression_free(e);
    return rc;
}
