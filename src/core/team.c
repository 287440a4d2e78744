/*
 * team.c - the fallback from several threads to one when a busy machine makes them slower
 * (team.h says why and how).
 */
#include "core/team.h"

/* What the calling thread's last team handed on (dcmci_team_hand_on). */
static _Thread_local unsigned g_skip = 0, g_backoff = 1;

void dcmci_team_init(dcmci_team *t, int threads)
{
    t->threads = threads > 1 ? threads : 1;
    t->alone = 0;
    t->skip = 0;
    t->backoff = 1;
    t->wall_ns = t->alone_ns = 0;
    t->regions = 0;
    t->force_after = 0;
}

/* The last frame ran on every thread to its end: they did not lose. */
static int won(const dcmci_team *t)
{
    return t->threads > 1 && !t->alone && t->regions > 0;
}

void dcmci_team_frame(dcmci_team *t)
{
    if (won(t))
        t->backoff = 1;
    t->wall_ns = t->alone_ns = 0;
    t->regions = 0;
    if (t->skip > 0) {
        t->skip--;
        t->alone = 1;
    } else {
        t->alone = 0;
    }
}

static void go_alone(dcmci_team *t)
{
    t->alone = 1;
    t->skip = t->backoff;
    t->backoff = t->backoff < DCMCI_TEAM_BACKOFF_MAX ? 2 * t->backoff : DCMCI_TEAM_BACKOFF_MAX;
}

void dcmci_team_account(dcmci_team *t, uint64_t wall_ns, uint64_t alone_ns)
{
    if (t->alone)
        return;
    t->regions++;
    if (t->force_after > 0) {
        if (t->regions >= t->force_after)
            go_alone(t);
        return;
    }
    t->wall_ns += wall_ns;
    t->alone_ns += alone_ns;
    if (t->wall_ns > t->alone_ns + DCMCI_TEAM_SLACK_NS)
        go_alone(t);
}

void dcmci_team_region(dcmci_team *t, uint64_t wall_ns, uint64_t own_ns, size_t own, size_t items)
{
    /* The calling thread's pace over all the items; when the others took every item it says
     * nothing about a lone thread, and the region counts as even. */
    dcmci_team_account(t, wall_ns,
                       own > 0 ? (uint64_t)((double)own_ns * (double)items / (double)own) : wall_ns);
}

void dcmci_team_inherit(dcmci_team *t)
{
    if (t->threads > 1) {
        t->skip = g_skip;
        t->backoff = g_backoff;
    }
}

void dcmci_team_hand_on(const dcmci_team *t)
{
    if (t->threads > 1) {
        g_skip = t->skip;
        g_backoff = won(t) ? 1 : t->backoff;
    }
}

void dcmci_team_force(dcmci_team *t, unsigned regions)
{
    t->force_after = regions;
}
