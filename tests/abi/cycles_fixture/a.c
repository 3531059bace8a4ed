/* A deliberate cycle (a.c calls b.c calls a.c) that abi.cycles.must_fail has to report. */
int cycles_fixture_a(int n);
int cycles_fixture_b(int n);

int cycles_fixture_a(int n)
{
    return n <= 0 ? 0 : cycles_fixture_b(n - 1);
}
