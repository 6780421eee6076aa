"""invoice-app: keeps invoices and pays the unpaid ones through the payment provider."""
