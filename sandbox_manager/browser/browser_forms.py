"""What a click or a key will do on the page: open a tab, submit a form (guard_submit)."""

from typing import Optional

from browser_errors import ActionError

# For a click, in one round trip: whether it opens a new tab (a link or form with a target
# of its own) and what form it would submit (a submit button's formaction and formmethod
# win over the form's own).
CLICK_EFFECTS = """el => {
  const control = el.closest('button, input');
  const form = control && control.form;
  const type = control ? (control.getAttribute('type') || '').toLowerCase() : '';
  const submits = !!form && (control.tagName === 'BUTTON'
    ? (type === '' || type === 'submit') : (type === 'submit' || type === 'image'));
  const owner = el.closest('a[href], area[href]') || (submits ? form : null);
  const target = owner ? (owner.getAttribute('target') || '').toLowerCase() : '';
  return {
    opens_tab: !['', '_self', '_parent', '_top'].includes(target),
    submit: !submits ? null : {
      action: control.hasAttribute('formaction') ? control.formAction : form.action,
      method: control.hasAttribute('formmethod') ? control.formMethod : form.method}};
}"""

# For Enter (a key press or type's submit): a field of a form submits it implicitly.
ENTER_SUBMITS = """el => {
  el = el || document.activeElement;
  if (!el || !el.form) return null;
  if (el.tagName === 'TEXTAREA' || el.isContentEditable) return null;
  return {action: el.form.action, method: el.form.method};
}"""


def approval_error(found: Optional[dict]) -> Optional[ActionError]:
    """The needs_approval error for a submission found in the page (None: no submission)."""
    if not isinstance(found, dict):
        return None
    method = str(found.get("method") or "get").upper()
    action = str(found.get("action") or "this page")[:500]
    return ActionError("needs_approval",
                       f"this would submit a form: {method} {action}; ask the user, then "
                       "repeat the action with guard_submit false")


def is_enter(key: str) -> bool:
    return key.split("+")[-1] in ("Enter", "NumpadEnter")
