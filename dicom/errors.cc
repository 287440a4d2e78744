/*
 * errors.cc - how the adapter's failures and exceptions become statuses: our own refusals (typed
 * Failures), DCMTK's exceptions while it parses untrusted bytes (malformed input), and the rest
 * (our bugs, DCMC_ERR_INTERNAL). guard() (internal.h), around every entry point of api.cc,
 * calls status_of_current_exception.
 *
 * The parse boundary. DCMTK 3.6.7 reports most problems through OFCondition, but it can throw
 * out of its parser (std::out_of_range on a crafted DICOMDIR record: prescan.h), and an input
 * causing that is malformed input, not a bug of ours. Inside the boundary are exactly the DCMTK
 * calls that read bytes of the untrusted input, each wrapped in parsing() (internal.h):
 *   - DcmFileFormat::loadFile of an input (load.cc; the first look at a DICOMDIR, dicomdir.cc);
 *   - values DCMTK loads lazily from the input on first access: attribute values (get_string,
 *     get_int, block.cc's byte values), the pixel data (pixels.cc), JPEG 2000 fragments and
 *     private values (j2k.cc), the search for Referenced File IDs (dicomdir.cc);
 *   - DCMTK's decoders of the input's compressed pixel data (chooseRepresentation, load.cc);
 *   - the protected dataset parsed from the decrypted payload (protect.cc's restore);
 *   - DicomDirInterface::addDicomFile, which parses each file it adds (dicomdir.cc).
 * parsing() turns an exception out of those into a Failure with DCMC_ERR_FORMAT. Outside it are
 * our own code, OpenJPEG (C: it reports, never throws) and DCMTK building, encoding, serialising
 * and writing datasets (the protected attributes, the re-encoders, saveFile, the read-back of a
 * deflated output we wrote): an exception there (std::logic_error, anything unknown) is
 * DCMC_ERR_INTERNAL. (Serialising may fetch a value DCMTK left on disk, but fetching a value's
 * bytes is not parsing them.) std::bad_alloc is DCMC_ERR_NOMEM wherever it comes from.
 */
#include "internal.h"
#include "testhook.h"

#include <cstdarg>
#include <cstdio>
#include <stdexcept>

namespace dcmci {

namespace {

const char *const kBug = "internal error (a bug in dcmcrypt, not in the input; please report it)";

std::string vformat(const char *fmt, va_list ap)
{
    char buf[DCMC_DICOM_MSG];
    vsnprintf(buf, sizeof buf, fmt, ap);
    return buf;
}

} // namespace

void fail(dcmc_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::string msg = vformat(fmt, ap);
    va_end(ap);
    throw Failure{st, msg};
}

void bug(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::string msg = std::string(kBug) + ": " + vformat(fmt, ap);
    va_end(ap);
    throw Failure{DCMC_ERR_INTERNAL, msg};
}

void parse_failed(const char *what, const char *why)
{
    fail(DCMC_ERR_FORMAT, "%s: DCMTK failed while reading it (%s): malformed input", what,
         why ? why : "unknown exception");
}

dcmc_status status_of_current_exception(std::string &msg)
{
    try {
        throw;
    } catch (const Failure &e) {
        msg = e.msg;
        return e.status;
    } catch (const std::bad_alloc &) {
        msg = "out of memory";
        return DCMC_ERR_NOMEM;
    } catch (const std::exception &e) {
        msg = std::string(kBug) + ": " + e.what();
        return DCMC_ERR_INTERNAL;
    } catch (...) {
        msg = std::string(kBug) + ": unknown exception";
        return DCMC_ERR_INTERNAL;
    }
}

} // namespace dcmci

/* The test hook (testhook.h): throw what `what` names, inside or outside the parse boundary, and
 * map it through the guard() of the API. */
extern "C" dcmc_status dcmci_dicom_exception_status(int what, char *msg, size_t msg_len)
{
    using namespace dcmci;
    auto throw_it = [what] {
        switch (what & ~DCMCI_THROW_WHILE_PARSING) {
        case DCMCI_THROW_FAILURE:
            fail(DCMC_ERR_UNSUPPORTED, "a refusal of ours");
        case DCMCI_THROW_BAD_ALLOC:
            throw std::bad_alloc();
        case DCMCI_THROW_LOGIC_ERROR:
            throw std::logic_error("a broken invariant");
        case DCMCI_THROW_OUT_OF_RANGE:
            throw std::out_of_range("basic_string::erase");
        case DCMCI_THROW_UNKNOWN:
            throw 42;
        case DCMCI_THROW_BUG:
            bug("an invariant of ours");
        default:
            break;
        }
    };
    return guard(msg, msg_len, [what, &throw_it] {
        if (what & DCMCI_THROW_WHILE_PARSING)
            parsing("test.dcm", throw_it);
        else
            throw_it();
    });
}
