/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "suppress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The lines as graph vertices: rows 0..R-1, columns R..R+C-1; the suppressed cells are its
 * edges. */
struct graph {
    size_t n_cells;
    uint32_t n_rows, n_cols, n_vertices;
    uint32_t *row_size, *col_size;
    /* Cells by line, compressed: line_cells[line_start[l] .. line_start[l+1]) for line l
     * (rows first, then columns); a vertex's adjacency is its line's cells. */
    uint32_t *line_start, *line_cells;
    /* Scratch for the searches. */
    uint32_t *disc, *low, *parent_edge, *stack_v, *stack_i;
    int64_t *dist;
    uint32_t *prev_cell;
    bool *done;
};

static uint32_t other_end(const struct graph *g, const struct suppress_cell *cell, uint32_t v)
{
    return v == cell->row ? g->n_rows + cell->col : cell->row;
}

static void graph_free(struct graph *g)
{
    free(g->row_size);
    free(g->col_size);
    free(g->line_start);
    free(g->line_cells);
    free(g->disc);
    free(g->low);
    free(g->parent_edge);
    free(g->stack_v);
    free(g->stack_i);
    free(g->dist);
    free(g->prev_cell);
    free(g->done);
}

static int graph_build(struct graph *g, const struct suppress_cell *cells, size_t n)
{
    uint32_t lines, *fill = NULL;

    memset(g, 0, sizeof(*g));
    g->n_cells = n;
    for (size_t i = 0; i < n; i++) {
        if (cells[i].row + 1 > g->n_rows)
            g->n_rows = cells[i].row + 1;
        if (cells[i].col + 1 > g->n_cols)
            g->n_cols = cells[i].col + 1;
    }
    lines = g->n_vertices = g->n_rows + g->n_cols;
    g->row_size = calloc(g->n_rows + 1, sizeof(uint32_t));
    g->col_size = calloc(g->n_cols + 1, sizeof(uint32_t));
    g->line_start = calloc(lines + 1, sizeof(uint32_t));
    g->line_cells = malloc((2 * n + 1) * sizeof(uint32_t));
    g->disc = malloc(lines * sizeof(uint32_t));
    g->low = malloc(lines * sizeof(uint32_t));
    g->parent_edge = malloc(lines * sizeof(uint32_t));
    g->stack_v = malloc(lines * sizeof(uint32_t));
    g->stack_i = malloc(lines * sizeof(uint32_t));
    g->dist = malloc(lines * sizeof(int64_t));
    g->prev_cell = malloc(lines * sizeof(uint32_t));
    g->done = malloc(lines * sizeof(bool));
    fill = calloc(lines + 1, sizeof(uint32_t));
    if (!g->row_size || !g->col_size || !g->line_start || !g->line_cells || !g->disc ||
        !g->low || !g->parent_edge || !g->stack_v || !g->stack_i || !g->dist ||
        !g->prev_cell || !g->done || !fill) {
        free(fill);
        graph_free(g);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        g->row_size[cells[i].row]++;
        g->col_size[cells[i].col]++;
    }
    for (uint32_t r = 0; r < g->n_rows; r++)
        g->line_start[r + 1] = g->line_start[r] + g->row_size[r];
    for (uint32_t c = 0; c < g->n_cols; c++)
        g->line_start[g->n_rows + c + 1] = g->line_start[g->n_rows + c] + g->col_size[c];
    for (size_t i = 0; i < n; i++) {
        uint32_t r = cells[i].row, c = g->n_rows + cells[i].col;
        g->line_cells[g->line_start[r] + fill[r]++] = (uint32_t)i;
        g->line_cells[g->line_start[c] + fill[c]++] = (uint32_t)i;
    }
    free(fill);
    return 0;
}

/* The cheapest cell of line l that is not suppressed, or UINT32_MAX. Among equal costs, a
 * cell whose other line already holds a suppressed cell comes first (it tends to close a
 * cycle), then the lowest index. */
static uint32_t cheapest_in_line(const struct graph *g, const struct suppress_cell *cells,
                                 uint32_t l, const uint32_t *suppressed_in_line)
{
    uint32_t best = UINT32_MAX;
    bool best_linked = false;

    for (uint32_t k = g->line_start[l]; k < g->line_start[l + 1]; k++) {
        uint32_t i = g->line_cells[k];
        uint32_t other = l < g->n_rows ? g->n_rows + cells[i].col : cells[i].row;
        bool linked = suppressed_in_line[other] > 0;

        if (cells[i].suppressed)
            continue;
        if (best == UINT32_MAX || cells[i].cost < cells[best].cost ||
            (cells[i].cost == cells[best].cost && linked && !best_linked)) {
            best = i;
            best_linked = linked;
        }
    }
    return best;
}

/* Rules 1 and 3, line by line. Returns how many cells it suppressed. */
static size_t protect_lines(const struct graph *g, struct suppress_cell *cells, int64_t min_sum,
                            uint32_t *count, int64_t *sum)
{
    uint32_t lines = g->n_rows + g->n_cols;
    size_t added = 0;

    memset(count, 0, lines * sizeof(*count));
    memset(sum, 0, lines * sizeof(*sum));
    for (size_t i = 0; i < g->n_cells; i++)
        if (cells[i].suppressed) {
            count[cells[i].row]++;
            count[g->n_rows + cells[i].col]++;
            sum[cells[i].row] += cells[i].cost;
            sum[g->n_rows + cells[i].col] += cells[i].cost;
        }
    for (uint32_t l = 0; l < lines; l++) {
        if (g->line_start[l + 1] - g->line_start[l] < 2)
            continue;
        while (count[l] == 1 || (min_sum > 0 && sum[l] > 0 && sum[l] < min_sum)) {
            uint32_t i = cheapest_in_line(g, cells, l, count), other;
            if (i == UINT32_MAX)
                break;
            cells[i].suppressed = true;
            added++;
            other = l < g->n_rows ? g->n_rows + cells[i].col : cells[i].row;
            count[l]++;
            count[other]++;
            sum[l] += cells[i].cost;
            sum[other] += cells[i].cost;
        }
    }
    return added;
}

/* A bridge among the suppressed cells (Tarjan, iterative) that is not in skip, or
 * UINT32_MAX. */
static uint32_t find_bridge(struct graph *g, const struct suppress_cell *cells, const bool *skip)
{
    uint32_t time = 0;

    for (uint32_t v = 0; v < g->n_vertices; v++)
        g->disc[v] = UINT32_MAX;
    for (uint32_t root = 0; root < g->n_vertices; root++) {
        uint32_t depth = 0;

        if (g->disc[root] != UINT32_MAX)
            continue;
        g->disc[root] = g->low[root] = time++;
        g->parent_edge[root] = UINT32_MAX;
        g->stack_v[0] = root;
        g->stack_i[0] = g->line_start[root];
        depth = 1;
        while (depth) {
            uint32_t v = g->stack_v[depth - 1];
            uint32_t *k = &g->stack_i[depth - 1];

            if (*k < g->line_start[v + 1]) {
                uint32_t e = g->line_cells[(*k)++], w;
                if (!cells[e].suppressed || e == g->parent_edge[v])
                    continue;
                w = other_end(g, &cells[e], v);
                if (g->disc[w] == UINT32_MAX) {
                    g->disc[w] = g->low[w] = time++;
                    g->parent_edge[w] = e;
                    g->stack_v[depth] = w;
                    g->stack_i[depth] = g->line_start[w];
                    depth++;
                } else if (g->disc[w] < g->low[v]) {
                    g->low[v] = g->disc[w];
                }
                continue;
            }
            /* v is finished: report the edge to its parent if nothing below climbs above. */
            depth--;
            if (depth) {
                uint32_t u = g->stack_v[depth - 1];
                if (g->low[v] < g->low[u])
                    g->low[u] = g->low[v];
                if (g->low[v] > g->disc[u] && !skip[g->parent_edge[v]])
                    return g->parent_edge[v];
            }
        }
    }
    return UINT32_MAX;
}

/* Close a cycle through bridge b: the cheapest path between its ends over the other cells
 * (suppressed ones cost nothing), whose cells are then suppressed. Returns how many. */
static size_t close_cycle(struct graph *g, struct suppress_cell *cells, uint32_t b)
{
    uint32_t from = cells[b].row, to = g->n_rows + cells[b].col;
    size_t added = 0;

    for (uint32_t v = 0; v < g->n_vertices; v++) {
        g->dist[v] = INT64_MAX;
        g->done[v] = false;
        g->prev_cell[v] = UINT32_MAX;
    }
    g->dist[from] = 0;
    for (;;) {          /* Dijkstra, O(V^2 + E): tables have at most a few thousand lines */
        uint32_t v = UINT32_MAX;
        for (uint32_t u = 0; u < g->n_vertices; u++)
            if (!g->done[u] && g->dist[u] != INT64_MAX && (v == UINT32_MAX || g->dist[u] < g->dist[v]))
                v = u;
        if (v == UINT32_MAX || v == to)
            break;
        g->done[v] = true;
        for (uint32_t k = g->line_start[v]; k < g->line_start[v + 1]; k++) {
            uint32_t e = g->line_cells[k], w = other_end(g, &cells[e], v);
            int64_t d = g->dist[v] + (cells[e].suppressed ? 0 : cells[e].cost + 1);
            if (e == b || g->done[w] || d >= g->dist[w])
                continue;
            g->dist[w] = d;
            g->prev_cell[w] = e;
        }
    }
    if (g->dist[to] == INT64_MAX)
        return 0;       /* no other way round: the lines give it away, whatever is hidden */
    for (uint32_t v = to; v != from;) {
        uint32_t e = g->prev_cell[v];
        if (!cells[e].suppressed) {
            cells[e].suppressed = true;
            added++;
        }
        v = other_end(g, &cells[e], v);
    }
    return added;
}

int suppress_protect(struct suppress_cell *cells, size_t n, int64_t min_sum)
{
    struct graph g;
    uint32_t *count = NULL;
    int64_t *sum = NULL;
    bool *unprotectable = NULL;
    size_t added = 0, step;
    int r;

    for (size_t i = 0; i < n; i++)
        cells[i].suppressed = cells[i].primary;
    if (n == 0)
        return 0;
    r = graph_build(&g, cells, n);
    if (r < 0)
        return r;
    count = malloc((g.n_rows + g.n_cols) * sizeof(*count));
    sum = malloc((g.n_rows + g.n_cols) * sizeof(*sum));
    unprotectable = calloc(n, sizeof(*unprotectable));
    if (!count || !sum || !unprotectable) {
        r = -ENOMEM;
        goto out;
    }
    /* Each round suppresses at least one more cell, or marks a bridge unprotectable: at
     * most 2n rounds. */
    for (;;) {
        uint32_t b;

        step = protect_lines(&g, cells, min_sum, count, sum);
        added += step;
        if (step)
            continue;
        b = find_bridge(&g, cells, unprotectable);
        if (b == UINT32_MAX)
            break;
        step = close_cycle(&g, cells, b);
        if (!step)
            unprotectable[b] = true;    /* the lines alone give it away, whatever is hidden */
        added += step;
    }
    r = added > INT32_MAX ? INT32_MAX : (int)added;
out:
    free(unprotectable);
    free(count);
    free(sum);
    graph_free(&g);
    return r;
}
