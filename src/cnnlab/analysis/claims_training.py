"""The training lectures' numbers as claims (batch norm, dropout, initial loss, initialisation, label smoothing)."""
