"""Password complexity policy (等保: 口令复杂度)."""

from __future__ import annotations

from cloud.security.config import SecuritySettings, get_security_settings

CLASS_NAMES = ("小写字母", "大写字母", "数字", "符号")


def character_classes(value: str) -> int:
    return sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )


def check_password(value: str, *, username: str | None = None, settings: SecuritySettings | None = None) -> str:
    """Return ``value`` when it satisfies the policy, else raise ``ValueError`` with a Chinese reason."""
    s = settings or get_security_settings()
    if len(value) < s.password_min_length:
        raise ValueError(f"密码长度至少 {s.password_min_length} 位 (password too short)")
    if len(value) > 128:
        raise ValueError("密码长度不超过 128 位 (password too long)")
    if character_classes(value) < s.password_min_classes:
        raise ValueError(
            f"密码须至少包含{'、'.join(CLASS_NAMES)}中的 {s.password_min_classes} 类 (password too simple)"
        )
    if username and len(username) >= 3 and username.lower() in value.lower():
        raise ValueError("密码不得包含用户名 (password contains the username)")
    return value
