"""Table helpers: LaTeX (booktabs) formatting shared by every table script."""
