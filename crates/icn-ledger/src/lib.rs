//! The mutual-credit ledger, as a [`Domain`](icn_kernel::Domain) on the event log.
//!
//! **Who may debit an account.** A member's account is debited only by
//! their own chain (a transfer, a demurrage charge) or by the outcome of a
//! dispute, signed by the mediator the payer named. Spending past the floor
//! twice therefore needs a fork of the member's own chain, and the kernel
//! proves forks when the branches meet (exactly one counts; the ledger
//! freezes the account and tells the payees of the voided entries).
//!
//! **Limits over the causal past.** The balance a payment is checked
//! against is every effect of the payer's own chain so far plus the effects
//! of other chains that are in the payment's causal past (read through the
//! kernel's causal clock). Nothing else, so every node reaches the same
//! verdict whatever else it has seen. A dispute's reversal may take a payee
//! below their floor: it is a decision, not spending.
//!
//! **Payment requests** live in the payee's chain; the payer answers in
//! theirs (a transfer that names the request, or a decline), and the payer's
//! node accepts by itself after `ledger.auto_accept_days` unless declined.
//!
//! **Invariant**: balances (the commons' included) sum to zero per
//! currency; checked after every applied event that moves an amount.

mod amount;
mod body;
mod domain;
mod policy;
mod view;

pub use amount::{AmountError, format_amount, parse_amount};
pub use body::*;
pub use domain::LedgerDomain;
pub use policy::{DAY_MS, DEMURRAGE_PERIOD_MS, Policy, Standing};
pub use view::*;
