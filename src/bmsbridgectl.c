/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: replaced by the CLI module. */
int main(void)
{
	return 1;
}
