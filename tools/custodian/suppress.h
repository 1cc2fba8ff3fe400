/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* suppress: complementary cell suppression, so that a figure withheld from the open data
 * cannot be worked out from the figures published beside it and from totals.
 *
 * A table is a set of cells, each on one row and one column; a row or a column is a
 * *line*. The attacker is assumed to know every published cell and the total of every line
 * (the worst case: a total may be published elsewhere, or known to a member of the
 * consortium from the custodian's report).
 *
 * The cells the caller marks primary (too few people behind them) are suppressed, and
 * complements are added, cheapest first, until:
 *
 *  1. no line holds exactly one suppressed cell (else: its total minus the rest gives it);
 *  2. no suppressed cell is a bridge of the graph whose vertices are the lines and whose
 *     edges are the suppressed cells: in a two-way table with known margins a suppressed
 *     cell is determined exactly when it lies on no cycle of that graph (the lines on one
 *     side of a bridge add up to it); a missing cycle is closed along the cheapest path
 *     through the table;
 *  3. when min_sum > 0, the suppressed cells of every line add up to 0 or at least min_sum,
 *     so that a line's total does not narrow them to a handful of small values.
 *
 * A cell that is alone on its line is that line's total: no suppression can protect it
 * from someone who knows that total (nor any cell the table's shape leaves on no cycle);
 * those are left as they are, and the caller chooses its lines so that such totals are not
 * known (docs/opendata.md).
 *
 * Pure: no I/O. Deterministic: the same table gives the same pattern. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct suppress_cell {
    uint32_t row, col;          /* small, dense numbers: arrays are sized by the largest */
    int64_t cost;               /* >= 0: the cell's value; the cheapest are hidden first */
    bool primary;               /* in: must not be published */
    bool suppressed;            /* out: primary, or hidden to protect one */
};

/* Mark cells[i].suppressed. Returns the number of complements added, or -ENOMEM. At most
 * one cell per (row, col) pair. */
int suppress_protect(struct suppress_cell *cells, size_t n, int64_t min_sum);
