/* The other half of the cycle of a.c. */
int cycles_fixture_a(int n);
int cycles_fixture_b(int n);

int cycles_fixture_b(int n)
{
    return n <= 0 ? 1 : cycles_fixture_a(n - 1);
}
