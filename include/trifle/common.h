/**
 * @file trifle/common.h
 * @brief Export macros, version numbers and the memory hooks shared by every public header.
 */
#ifndef TRIFLE_COMMON_H
#define TRIFLE_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/** @def TRIFLE_BEGIN_DECLS
 *  Opens C linkage (`extern "C" {`) around a header's declarations in C++; empty in C. */
/** @def TRIFLE_END_DECLS
 *  Closes what TRIFLE_BEGIN_DECLS opened. */
#ifdef __cplusplus
#define TRIFLE_BEGIN_DECLS extern "C" {
#define TRIFLE_END_DECLS }
#else
#define TRIFLE_BEGIN_DECLS
#define TRIFLE_END_DECLS
#endif

/** @def TRIFLE_API
 *  Marks a symbol exported from libtrifle (the library is built with -fvisibility=hidden). */
/** @def TRIFLE_PRINTF(f, a)
 *  Lets GCC and Clang check a printf-style call: argument @p f is the format, the variable
 *  arguments start at @p a. Empty with other compilers. */
#if defined(__GNUC__) || defined(__clang__)
#define TRIFLE_API __attribute__((visibility("default")))
#define TRIFLE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TRIFLE_API
#define TRIFLE_PRINTF(f, a)
#endif

#define TRIFLE_VERSION_MAJOR 1        /**< library major version (the SONAME) */
#define TRIFLE_VERSION_MINOR 0        /**< library minor version */
#define TRIFLE_VERSION_PATCH 0        /**< library patch version */
#define TRIFLE_VERSION_STRING "1.0.0" /**< "major.minor.patch" */

TRIFLE_BEGIN_DECLS

/**
 * A stats handle: one configuration, its driver connections and its buffer. Thread-safe. Its
 * functions are in trifle/trifle.h; the type is declared here so that trifle/analysis.h, which
 * trifle/trifle.h includes, can name it without including trifle/trifle.h back.
 */
typedef struct trifle trifle;

/**
 * @brief The version of the library that is running (it may differ from TRIFLE_VERSION_STRING).
 * @return A static string such as "1.0.0". Thread-safe.
 */
TRIFLE_API const char *trifle_version(void);

/** Replaceable allocator; every libtrifle allocation and every driver allocation goes through it.
 */
typedef struct trifle_allocator {
    void *(*malloc)(size_t size);             /**< like malloc(3) */
    void *(*realloc)(void *ptr, size_t size); /**< like realloc(3) */
    void (*free)(void *ptr);                  /**< like free(3) */
} trifle_allocator;

/**
 * @brief Replace the allocator. Call it before any other libtrifle call, once per process.
 * @param a The functions to use; NULL restores malloc/realloc/free. The struct is copied.
 * Not thread-safe: no other libtrifle call may run at the same time.
 */
TRIFLE_API void trifle_set_allocator(const trifle_allocator *a);

/**
 * @brief Free memory that libtrifle handed to the caller (JSON text, timeline arrays, ...).
 * @param ptr What a libtrifle function returned as caller-owned memory; NULL is fine. Thread-safe.
 */
TRIFLE_API void trifle_mem_free(void *ptr);

/**
 * @brief Allocate through the allocator of trifle_set_allocator(), so trifle_mem_free() releases
 * it. For libraries built on libtrifle (libtrifle-simple) whose results the caller frees with
 * trifle_mem_free().
 * @param size Bytes; 0 allocates a minimal block.
 * @return The memory, or NULL when the allocator failed. Thread-safe.
 */
TRIFLE_API void *trifle_mem_alloc(size_t size);

/**
 * @brief Resize memory from trifle_mem_alloc() (or a libtrifle result) through the same allocator.
 * @param ptr The block, or NULL to allocate a new one.
 * @param size The new size in bytes; 0 keeps a minimal block.
 * @return The moved or grown block, or NULL when the allocator failed (then @p ptr is untouched).
 * Thread-safe.
 */
TRIFLE_API void *trifle_mem_realloc(void *ptr, size_t size);

/** Log levels passed to the log handler. */
enum trifle_log_level {
    TRIFLE_LOG_ERROR = 0, /**< an operation failed and nobody else will report it */
    TRIFLE_LOG_WARN = 1,  /**< something was degraded or retried */
    TRIFLE_LOG_INFO = 2,  /**< lifecycle: driver loaded, connection reopened */
    TRIFLE_LOG_DEBUG = 3  /**< detail for development */
};

/**
 * @brief Log callback.
 * @param level A trifle_log_level.
 * @param origin "core" or the driver name.
 * @param message The formatted message, without a newline; valid during the call only.
 * @param payload The pointer given to trifle_set_log_handler().
 * May be called from any thread, including the buffer's flush thread.
 */
typedef void (*trifle_log_fn)(int level, const char *origin, const char *message, void *payload);

/**
 * @brief Install the process-wide log handler. libtrifle never prints; with no handler it is
 * silent.
 * @param max_level Messages above this level are not formatted at all.
 * @param fn The handler, or NULL to turn logging off.
 * @param payload Passed to every call of @p fn.
 * Thread-safe, but messages being logged concurrently may still reach the previous handler.
 */
TRIFLE_API void trifle_set_log_handler(int max_level, trifle_log_fn fn, void *payload);

/**
 * @brief Send a message to the installed log handler, as libtrifle's own messages go; for libraries
 * built on libtrifle (libtrifle-simple) and for applications that want one log stream.
 * @param level A trifle_log_level; above the handler's max_level nothing is formatted.
 * @param origin Who speaks ("simple", an application name); NULL is "".
 * @param fmt A printf format (messages are cut at 1023 bytes); NULL logs nothing.
 * @param ... Its arguments.
 * Thread-safe.
 */
TRIFLE_API void trifle_log(int level, const char *origin, const char *fmt, ...) TRIFLE_PRINTF(3, 4);

/**
 * @brief trifle_log() with a va_list.
 * @param level A trifle_log_level.
 * @param origin Who speaks; NULL is "".
 * @param fmt A printf format; NULL logs nothing.
 * @param ap Its arguments.
 */
TRIFLE_API void trifle_vlog(int level, const char *origin, const char *fmt, va_list ap)
    TRIFLE_PRINTF(3, 0);

TRIFLE_END_DECLS

#endif
