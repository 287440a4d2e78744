/*
 * export.h - symbol visibility and the attributes of the public API.
 *
 * The libraries are built with -fvisibility=hidden: only declarations marked DCMC_API are
 * exported from the shared objects, so internal functions (prefix dcmci_) can change freely.
 * DCMC_NODISCARD marks the calls whose status says whether data is authentic or a key usable:
 * ignoring it is a bug. DCMC_NONNULL(...) tells callers' compilers which pointers must not be
 * NULL; the library itself is built with DCMC_INTERNAL_BUILD so that its own NULL checks (which
 * return DCMC_ERR_ARG) are never optimised away on the strength of the attribute.
 */
#ifndef DCMCRYPT_EXPORT_H
#define DCMCRYPT_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define DCMC_API __attribute__((visibility("default")))
#define DCMC_NODISCARD __attribute__((warn_unused_result))
#if defined(DCMC_INTERNAL_BUILD)
#define DCMC_NONNULL(...)
#else
#define DCMC_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#endif
#else
#define DCMC_API
#define DCMC_NODISCARD
#define DCMC_NONNULL(...)
#endif

#endif
